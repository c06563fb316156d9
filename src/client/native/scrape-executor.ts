import http2, {
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { PassThrough } from 'node:stream';
import { contentLength, endToEndHeaders } from '../../util/headers.js';
import { ignore } from '../../util/ignore.js';
import {
  COMPLETE_TRAILERS,
  needsCompleteTrailer,
  streamDelivered,
} from '../../wire/body-completion.js';
import { DEADLINE_HEADER, INTERNAL_HEADER_PREFIX } from '../../wire/protocol.js';
import type { Allowlist } from '../allowlist.js';
import type { ClientEvents, ServeOutcome } from '../client-events.js';
import { LocalTargets } from '../local-targets.js';
import type { LocalFetch, TargetResponse } from '../local-scrape.js';
import { parseAuthority, refuseStream } from './stream-reply.js';
import { reportRefusal, servedReporter } from '../served-reporter.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;
/** Used when the proxy sent no deadline (an older proxy): generous but finite. */
const FALLBACK_DEADLINE_MS = 60_000;
const WAIT_FOR_TRAILERS = { waitForTrailers: true };

/**
 * Executes scrapes that arrive as tunnel streams: checks the name and the allowlist,
 * fetches the local target with the scrape's deadline (LocalTargets), and streams the
 * answer back. Cancelling the stream aborts the local fetch.
 */
export class ScrapeExecutor {
  private readonly targets: LocalTargets;

  constructor(
    names: ReadonlySet<string>,
    allowlist: Allowlist,
    private readonly events: ClientEvents,
  ) {
    this.targets = new LocalTargets(names, allowlist);
  }

  /** Aborts scrapes still running (the grace period is over) and closes local connections. */
  close(): void {
    this.targets.close();
  }

  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const authority = String(headers[':authority'] ?? '');
    const pathAndQuery = String(headers[':path'] ?? '/');
    const path = pathAndQuery.split('?')[0] ?? '/';
    const { name, port } = parseAuthority(authority);
    const method = String(headers[':method'] ?? 'GET');
    // A stream whose HEADERS did not end it carries a request body (a POST to remote read).
    // The local fetch reads it from a pass-through: a fetch that ends early destroys its
    // body, and the stream is also where the answer goes.
    const body = stream.endAfterHeaders ? undefined : stream.pipe(new PassThrough());
    let bytes = 0;
    const report = servedReporter(this.events, { name, port, path }, () => bytes);
    stream.on('error', ignore);
    // A stream this side ended that closed without a reset delivered its answer (a proxy
    // that cuts a body off resets with CANCEL).
    const delivered = (): boolean => streamDelivered(stream);
    // Called only after the stream closes, by which time `fetch` is set.
    const onStreamClosed = (): void => {
      if (!delivered()) fetch?.stop('cancelled');
    };
    const relay = (response: TargetResponse, active: LocalFetch): void => {
      if (stream.closed || stream.destroyed) {
        response.discard();
        return;
      }
      // The trailer tells the proxy the body arrived in full, unless the proxy counts the
      // bytes of a body with a Content-Length itself (body-completion).
      const trailer = needsCompleteTrailer(
        headers,
        contentLength(response.headers['content-length']),
      );
      const head: OutgoingHttpHeaders = endToEndHeaders(response.headers);
      head[':status'] = response.statusCode;
      // A 204 must not name a length (RFC 9110, 8.6) and HTTP/2 resets a stream that does;
      // some targets send one anyway.
      if (response.statusCode === 204) delete head['content-length'];
      stream.respond(head, trailer ? WAIT_FOR_TRAILERS : undefined);
      if (trailer) stream.once('wantTrailers', () => stream.sendTrailers(COMPLETE_TRAILERS));
      response.relay(
        stream,
        {
          inspect: (chunk) => {
            bytes += chunk.length;
            return undefined;
          },
          abortDestination: () => {
            if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
          },
          deliveredWhenClosed: delivered,
        },
        (err) => {
          stream.off('close', onStreamClosed);
          if (!err) {
            report('ok', response.statusCode);
            return;
          }
          const outcome: ServeOutcome =
            active.stopped === undefined
              ? 'target_error'
              : active.stopped === 'deadline'
                ? 'timeout'
                : 'cancelled';
          report(outcome, response.statusCode, `body cut off: ${err.message}`);
        },
      );
    };

    const fetch = this.targets.fetch(
      {
        name,
        port,
        method,
        pathAndQuery,
        headers: endToEndHeaders(headers, [INTERNAL_HEADER_PREFIX]),
        authority,
        deadlineMs: Number(headers[DEADLINE_HEADER]) || FALLBACK_DEADLINE_MS,
        body,
      },
      {
        refused: (code, reason, allow) => {
          stream.off('close', onStreamClosed);
          reportRefusal(report, code, reason);
          refuseStream(stream, code, reason, allow);
          // A body nobody will read is let go; the proxy resets the stream once it has the answer.
          if (body) {
            stream.unpipe(body);
            stream.resume();
          }
        },
        cancelled: () => report('cancelled', 0, 'the scraper went away'),
        response: (response) => {
          if (fetch) relay(response, fetch);
          else response.discard();
        },
      },
    );
    if (!fetch) return;
    stream.once('close', onStreamClosed);
  }
}
