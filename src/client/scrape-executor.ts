import http, { type IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { pipeline } from 'node:stream';
import { endToEndHeaders } from '../util/headers.js';
import { formatHostPort } from '../util/host-port.js';
import { DEADLINE_HEADER, INTERNAL_HEADER_PREFIX } from '../tunnel/protocol.js';
import type { NatproxErrorCode } from '../errors.js';
import type { Allowlist } from './allowlist.js';
import type { ClientEvents, ServeOutcome } from './client-events.js';
import { parseAuthority, refuseStream } from './stream-reply.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;
/** Used when the proxy sent no deadline (an older proxy): generous but finite. */
const FALLBACK_DEADLINE_MS = 60_000;

/**
 * Executes scrapes that arrive as tunnel streams: checks the name and the allowlist,
 * fetches the local target with the scrape's deadline, and streams the answer back.
 * Cancelling the stream aborts the local fetch.
 */
export class ScrapeExecutor {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 32 });

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly allowlist: Allowlist,
    private readonly events: ClientEvents,
  ) {}

  private readonly inFlight = new Set<AbortController>();

  /** Aborts scrapes still running (the grace period is over) and closes local connections. */
  close(): void {
    for (const cancel of this.inFlight) cancel.abort('cancelled');
    this.agent.destroy();
  }

  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const startedAt = performance.now();
    const authority = String(headers[':authority'] ?? '');
    const pathAndQuery = String(headers[':path'] ?? '/');
    const path = pathAndQuery.split('?')[0] ?? '/';
    const { name, port } = parseAuthority(authority);
    let bytes = 0;
    let reported = false;
    const report = (outcome: ServeOutcome, status: number, reason?: string): void => {
      if (reported) return;
      reported = true;
      this.events.emit('scrapeServed', {
        name,
        port,
        path,
        outcome,
        status,
        durationMs: performance.now() - startedAt,
        bytes,
        ...(reason ? { reason } : {}),
      });
    };
    const refuse = (
      status: number,
      code: NatproxErrorCode,
      outcome: ServeOutcome,
      reason: string,
    ): void => {
      report(outcome, status, reason);
      refuseStream(stream, status, code, reason);
    };
    stream.on('error', () => {});

    if (!this.names.has(name)) {
      refuse(421, 'NATPROX_BAD_REQUEST', 'misdirected', `this client does not serve "${name}"`);
      return;
    }
    const decision = this.allowlist.check(port, path);
    if (!decision.allowed) {
      refuse(403, 'NATPROX_TARGET_FORBIDDEN', 'forbidden', decision.reason);
      return;
    }
    const { target } = decision;
    const deadlineMs = Number(headers[DEADLINE_HEADER]) || FALLBACK_DEADLINE_MS;
    const cancel = new AbortController();
    this.inFlight.add(cancel);
    const deadline = setTimeout(() => cancel.abort('deadline'), deadlineMs);
    const onStreamClosed = (): void => {
      if (!cancel.signal.aborted) cancel.abort('cancelled');
    };
    stream.once('close', onStreamClosed);
    const cleanup = (): void => {
      this.inFlight.delete(cancel);
      clearTimeout(deadline);
      stream.off('close', onStreamClosed);
    };
    const where = `${formatHostPort(target.host, target.port)}${path}`;

    const method = String(headers[':method'] ?? 'GET');
    const request = http.request({
      host: target.host,
      port: target.port,
      method,
      path: pathAndQuery,
      headers: { ...endToEndHeaders(headers, [INTERNAL_HEADER_PREFIX]), host: authority },
      agent: this.agent,
      signal: cancel.signal,
    });
    request.once('error', (err: Error) => {
      cleanup();
      if (cancel.signal.reason === 'cancelled') {
        report('cancelled', 0, 'the scraper went away');
        return;
      }
      if (cancel.signal.reason === 'deadline') {
        refuse(
          504,
          'NATPROX_SCRAPE_TIMEOUT',
          'timeout',
          `${where} did not answer within ${deadlineMs} ms`,
        );
        return;
      }
      const cause = (err as NodeJS.ErrnoException).code ?? err.message;
      refuse(502, 'NATPROX_TARGET_FAILED', 'target_error', `fetching ${where} failed: ${cause}`);
    });
    request.once('response', (response: IncomingMessage) => {
      if (stream.closed) {
        response.destroy();
        return;
      }
      stream.respond({
        ':status': response.statusCode ?? 502,
        ...endToEndHeaders(response.headers),
      });
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      pipeline(response, stream, (err) => {
        cleanup();
        if (!err) {
          report('ok', response.statusCode ?? 0);
          return;
        }
        const outcome: ServeOutcome =
          cancel.signal.reason === 'cancelled'
            ? 'cancelled'
            : cancel.signal.reason === 'deadline'
              ? 'timeout'
              : 'target_error';
        report(outcome, response.statusCode ?? 0, `body cut off: ${err.message}`);
        if (!stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
      });
    });
    request.end();
  }
}
