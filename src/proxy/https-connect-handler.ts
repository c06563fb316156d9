import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage, NatproxError } from '../errors.js';
import { failureFor, proxyOutcomeOfCode, type ScrapeFailureCode } from '../wire/failures.js';
import { clientAnswerReason, ERROR_CODE_HEADER } from '../wire/protocol.js';
import { parseHostPort } from '../util/host-port.js';
import { readLimited } from '../util/read-limited.js';
import { ignore } from '../util/ignore.js';
import { redactUrl } from '../util/redact-url.js';
import type { ProxyEvents, ScrapeOutcome } from './proxy-events.js';
import type { ScrapePolicy } from './scrape-handler.js';
import type { SessionRegistry } from './session-registry.js';
import { busyReason, type StreamCounter } from './stream-counter.js';
import { writeRawResponse } from './raw-response.js';

export interface HttpsConnectHandlerOptions {
  registry: SessionRegistry;
  events: ProxyEvents;
  policy: () => ScrapePolicy;
  streams: StreamCounter;
}

/** Longest error text read from the client when it refuses a CONNECT. */
const MAX_REASON_BYTES = 4096;

/**
 * Serves `CONNECT NAME:PORT` (what Prometheus sends for https targets with proxy_url): opens
 * an HTTP/2 CONNECT stream to the client, which connects to its allowlisted target, and then
 * relays bytes both ways. TLS runs end to end between the scraper and the target.
 */
export class HttpsConnectHandler {
  constructor(private readonly options: HttpsConnectHandlerOptions) {}

  handle(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const startedAt = performance.now();
    const policy = this.options.policy();
    const authority = parseHostPort(req.url ?? '');
    const name = typeof authority === 'string' ? '' : authority.host.toLowerCase();
    const port = typeof authority === 'string' ? 0 : authority.port;
    let bytes = 0;
    let sessionId: string | undefined = undefined; // known once the session is found
    const finish = (outcome: ScrapeOutcome, status: number, reason?: string): void => {
      this.options.events.emit('httpsConnectFinished', {
        name,
        port,
        path: '',
        outcome,
        status,
        durationMs: performance.now() - startedAt,
        bytes,
        ...(sessionId ? { sessionId } : {}),
        ...(reason ? { reason } : {}),
      });
    };
    const refuse = (code: ScrapeFailureCode, reason: string): void => {
      const { status, proxy: outcome } = failureFor(code);
      writeRawResponse(socket, status, `natprox: ${reason}`, { [ERROR_CODE_HEADER]: code });
      finish(outcome, status, reason);
    };
    socket.on('error', () => {});

    if (typeof authority === 'string' || port === 0) {
      refuse('NATPROX_BAD_REQUEST', `CONNECT needs NAME:PORT, got "${redactUrl(req.url ?? '')}"`);
      return;
    }
    const session = this.options.registry.lookup(name);
    if (!session?.httpsConnect) {
      refuse(
        'NATPROX_NO_CLIENT',
        session
          ? `the client for "${name}" cannot carry CONNECT (PushProx transport); use _scheme=https`
          : `no client is connected for name "${name}"`,
      );
      return;
    }
    sessionId = session.id;
    const release = this.options.streams.acquire(
      session,
      policy,
      req.headers['proxy-authorization'],
    );
    if (typeof release === 'string') {
      refuse('NATPROX_CLIENT_BUSY', busyReason(name, policy, release));
      return;
    }
    const abort = new AbortController();
    const onSocketGone = (): void =>
      abort.abort(new NatproxError('NATPROX_SCRAPE_CANCELLED', 'scraper closed the connection'));
    socket.once('close', onSocketGone);
    const connectTimeoutMs = policy.defaultScrapeTimeoutMs;
    const timer = setTimeout(
      () =>
        abort.abort(
          new NatproxError('NATPROX_SCRAPE_TIMEOUT', `no connection within ${connectTimeoutMs} ms`),
        ),
      connectTimeoutMs,
    );

    session.httpsConnect({ name, port, connectTimeoutMs }, abort.signal).then(
      (response) => {
        clearTimeout(timer);
        socket.off('close', onSocketGone);
        const tunnel = response.body;
        if (response.status !== 200) {
          readReason(tunnel, (text) => {
            release();
            // The client's own answer: its status goes on, counted as the table says.
            const code = response.headers[ERROR_CODE_HEADER];
            const outcome = proxyOutcomeOfCode(code);
            writeRawResponse(
              socket,
              response.status,
              `natprox: ${text}`,
              typeof code === 'string' ? { [ERROR_CODE_HEADER]: code } : {},
            );
            finish(outcome ?? 'target_error', response.status, text);
          });
          return;
        }
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) tunnel.write(head);
        // Idle CONNECT tunnels (kept alive by the scraper between scrapes) end after the
        // longest scrape timeout without traffic.
        socket.setTimeout(policy.maxScrapeTimeoutMs, () => socket.destroy());
        const count = (chunk: Buffer): void => {
          bytes += chunk.length;
        };
        tunnel.on('data', count);
        socket.on('data', count);
        tunnel.pipe(socket);
        socket.pipe(tunnel);
        let ended = false;
        const end = (): void => {
          if (ended) return;
          ended = true;
          release();
          tunnel.destroy();
          socket.destroy();
          finish('ok', 200);
        };
        tunnel.once('close', end);
        socket.once('close', end);
        tunnel.on('error', () => {});
      },
      (err: unknown) => {
        clearTimeout(timer);
        socket.off('close', onSocketGone);
        release();
        if (socket.destroyed) {
          finish('cancelled', 0, 'scraper closed the connection');
          return;
        }
        const timedOut = abort.signal.aborted;
        refuse(timedOut ? 'NATPROX_SCRAPE_TIMEOUT' : 'NATPROX_CLIENT_LOST', errorMessage(err));
      },
    );
  }
}

/**
 * The client's reason for refusing, as much of it as arrived, once its stream has closed
 * (the stream's slot is released then, not at the end of its body).
 */
function readReason(stream: Duplex, done: (text: string) => void): void {
  stream.on('error', ignore);
  const reason = readLimited(stream, MAX_REASON_BYTES, {
    onOver: 'truncate',
    rest: 'drain',
    onBreak: 'resolve',
  });
  stream.once('close', () => {
    void reason.then((text) =>
      done(clientAnswerReason(text.toString('utf8')) ?? 'the client refused the connection'),
    );
  });
}
