import http, { type IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { endToEndHeaders } from '../util/headers.js';
import { formatHostPort } from '../util/host-port.js';
import {
  BODY_COMPLETE_TRAILER,
  DEADLINE_HEADER,
  INTERNAL_HEADER_PREFIX,
} from '../tunnel/protocol.js';
import { relayBody } from '../util/relay-body.js';
import type { NatproxErrorCode } from '../errors.js';
import type { Allowlist } from './allowlist.js';
import type { ClientEvents, ServeOutcome } from './client-events.js';
import { parseAuthority, refuseStream } from './stream-reply.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;
/** Used when the proxy sent no deadline (an older proxy): generous but finite. */
const FALLBACK_DEADLINE_MS = 60_000;
const COMPLETE_TRAILERS = { [BODY_COMPLETE_TRAILER]: '1' };

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

  private readonly inFlight = new Set<(why: 'cancelled') => void>();

  /** Aborts scrapes still running (the grace period is over) and closes local connections. */
  close(): void {
    for (const stop of this.inFlight) stop('cancelled');
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
    const where = `${formatHostPort(target.host, target.port)}${path}`;
    const request = http.request({
      host: target.host,
      port: target.port,
      method: String(headers[':method'] ?? 'GET'),
      path: pathAndQuery,
      headers: { ...endToEndHeaders(headers, [INTERNAL_HEADER_PREFIX]), host: authority },
      agent: this.agent,
    });
    // Why the local fetch was stopped, if it was; destroying the request aborts it.
    let stopped: 'deadline' | 'cancelled' | undefined;
    const stop = (why: 'deadline' | 'cancelled'): void => {
      if (stopped) return;
      stopped = why;
      request.destroy();
    };
    this.inFlight.add(stop);
    const deadline = setTimeout(() => stop('deadline'), deadlineMs);
    const onStreamClosed = (): void => stop('cancelled');
    stream.once('close', onStreamClosed);
    const cleanup = (): void => {
      this.inFlight.delete(stop);
      clearTimeout(deadline);
      stream.off('close', onStreamClosed);
    };

    request.once('error', (err: Error) => {
      cleanup();
      if (stopped === 'cancelled') {
        report('cancelled', 0, 'the scraper went away');
        return;
      }
      if (stopped === 'deadline') {
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
      if (stream.closed || stream.destroyed) {
        response.destroy();
        return;
      }
      // The trailer tells the proxy the body arrived in full (see BODY_COMPLETE_TRAILER).
      stream.respond(
        { ':status': response.statusCode ?? 502, ...endToEndHeaders(response.headers) },
        { waitForTrailers: true },
      );
      stream.once('wantTrailers', () => stream.sendTrailers(COMPLETE_TRAILERS));
      relayBody(
        response,
        stream,
        {
          endedCleanly: () => response.complete,
          inspect: (chunk) => {
            bytes += chunk.length;
            return undefined;
          },
          abortDestination: () => {
            if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
          },
        },
        (err) => {
          cleanup();
          if (!err) {
            report('ok', response.statusCode ?? 0);
            return;
          }
          const outcome: ServeOutcome =
            stopped === undefined
              ? 'target_error'
              : stopped === 'deadline'
                ? 'timeout'
                : 'cancelled';
          report(outcome, response.statusCode ?? 0, `body cut off: ${err.message}`);
        },
      );
    });
    request.end();
  }
}
