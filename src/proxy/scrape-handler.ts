import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { ignore } from '../util/ignore.js';
import { errorMessage, NatproxError, type NatproxErrorCode } from '../errors.js';
import { contentLength, endToEndHeaders, statusHasNoBody } from '../util/headers.js';
import { relayBody } from '../util/relay-body.js';
import { clientAnswerReason, ERROR_CODE_HEADER, INTERNAL_HEADER_PREFIX } from '../wire/protocol.js';
import { scrapeDeadlineMs } from './deadline.js';
import { sendText } from './plain-response.js';
import type { ProxyEvents, ScrapeFinished, ScrapeOutcome } from './proxy-events.js';
import type { SessionRegistry } from './session-registry.js';
import { busyReason, type StreamCounter } from './stream-counter.js';

/** The settings a scrape reads when it starts; a config reload replaces them. */
export interface ScrapePolicy {
  defaultScrapeTimeoutMs: number;
  maxScrapeTimeoutMs: number;
  maxStreamsPerClient: number;
  /** Undefined when the proxy has no scrapers: (nothing to tell them apart by). */
  maxStreamsPerScraper: number | undefined;
  maxResponseBytes: number;
  maxRequestBytes: number;
}

export interface ScrapeHandlerOptions {
  registry: SessionRegistry;
  events: ProxyEvents;
  policy: () => ScrapePolicy;
  streams: StreamCounter;
}

/** Outcome of a response the client made itself, read from its error code header. */
const OUTCOME_BY_CODE: Partial<Record<string, ScrapeOutcome>> = {
  NATPROX_TARGET_FORBIDDEN: 'forbidden',
  NATPROX_TARGET_FAILED: 'target_error',
  NATPROX_SCRAPE_TIMEOUT: 'timeout',
  NATPROX_BAD_REQUEST: 'bad_request',
};

const STATUS_BY_CODE: Partial<Record<NatproxErrorCode, number>> = {
  NATPROX_SCRAPE_TIMEOUT: 504,
  NATPROX_REQUEST_TOO_LARGE: 413,
  NATPROX_CLIENT_LOST: 502,
  // A PushProx client that stopped polling: as when no client is connected.
  NATPROX_NO_CLIENT: 503,
};

/**
 * Serves one absolute-form forward-proxy request (`GET http://NAME:PORT/PATH`): picks the
 * session serving NAME, opens a stream with the scrape's deadline and streams the answer
 * back with back-pressure. Every way it can end is reported once through `events`.
 */
export class ScrapeHandler {
  constructor(private readonly options: ScrapeHandlerOptions) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const policy = this.options.policy();
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      sendText(res, 400, `natprox: cannot parse the request target "${req.url}"`, {
        code: 'NATPROX_BAD_REQUEST',
      });
      return;
    }
    const name = url.hostname.toLowerCase();
    const port = url.port === '' ? 80 : Number(url.port);
    const path = url.pathname;
    let finished = false;
    const finish = (
      outcome: ScrapeOutcome,
      status: number,
      extra: { bytes?: number; sessionId?: string; reason?: string } = {},
    ): void => {
      if (finished) return;
      finished = true;
      const info: ScrapeFinished = {
        name,
        port,
        path,
        outcome,
        status,
        durationMs: performance.now() - startedAt,
        bytes: extra.bytes ?? 0,
      };
      if (extra.sessionId) info.sessionId = extra.sessionId;
      if (extra.reason) info.reason = extra.reason;
      this.options.events.emit('scrapeFinished', info);
    };

    if (url.protocol !== 'http:') {
      const reason = `only http:// targets can be scraped through natprox, got ${url.protocol}//`;
      sendText(res, 400, `natprox: ${reason}`, { code: 'NATPROX_BAD_REQUEST' });
      finish('bad_request', 400, { reason });
      return;
    }
    // Any method goes on: the client's allowlist decides (GET and HEAD unless it grants
    // more), so a POST to a remote-read path the client allows works, and nothing else.
    const method = req.method ?? 'GET';
    const bodiless = method === 'GET' || method === 'HEAD';
    const hasBody = carriesBody(req);
    const declaredBody = contentLength(req.headers['content-length']) ?? 0;
    if (hasBody && declaredBody > policy.maxRequestBytes) {
      const reason = `request body of ${declaredBody} bytes is over the limit of ${policy.maxRequestBytes} (max_request_bytes)`;
      sendText(res, 413, `natprox: ${reason}`, {
        code: 'NATPROX_REQUEST_TOO_LARGE',
        headers: { connection: 'close' },
      });
      finish('too_large', 413, { reason });
      return;
    }
    if (bodiless && hasBody) {
      // A GET or HEAD has no body to send on (HTTP/2 would reset a stream that named one).
      const reason = `a ${req.method} request carries no body, but this one has one (Content-Length or Transfer-Encoding); send the request without a body`;
      sendText(res, 400, `natprox: ${reason}`, {
        code: 'NATPROX_BAD_REQUEST',
        headers: { connection: 'close' },
      });
      finish('bad_request', 400, { reason });
      return;
    }

    const session = this.options.registry.lookup(name);
    if (!session) {
      const reason = `no client is connected for name "${name}"`;
      sendText(res, 503, `natprox: ${reason}`, { code: 'NATPROX_NO_CLIENT' });
      finish('no_client', 503, { reason });
      return;
    }
    const release = this.options.streams.acquire(
      session,
      policy,
      req.headers['proxy-authorization'],
    );
    if (typeof release === 'string') {
      const reason = busyReason(name, policy, release);
      sendText(res, 429, `natprox: ${reason}`, {
        code: 'NATPROX_CLIENT_BUSY',
        headers: { 'retry-after': '1' },
      });
      finish('busy', 429, { reason, sessionId: session.id });
      return;
    }

    const deadlineMs = scrapeDeadlineMs(
      req.headers['x-prometheus-scrape-timeout-seconds'],
      policy.defaultScrapeTimeoutMs,
      policy.maxScrapeTimeoutMs,
    );
    const abort = new AbortController();
    const deadline = setTimeout(() => {
      abort.abort(
        new NatproxError(
          'NATPROX_SCRAPE_TIMEOUT',
          `scrape of ${name}:${port}${path} did not finish within ${Math.round(deadlineMs)} ms`,
        ),
      );
    }, deadlineMs);
    let settled = false;
    // Stays on `res` when the scrape is done (`settled` guards it): res serves this request only.
    res.on('close', () => {
      if (!settled && !res.writableFinished) {
        abort.abort(new NatproxError('NATPROX_SCRAPE_CANCELLED', 'scraper closed the request'));
      }
    });

    let cancelUpload: (() => void) | undefined;
    const done = (): void => {
      settled = true;
      clearTimeout(deadline);
      release();
      // The answer is through before the whole request body went (a target or the client
      // answered early): stop sending it, so the stream does not outlive the scrape, and
      // read the rest away as Node does for a body nobody reads, so the connection can
      // carry the next request.
      if (body && !req.readableEnded) {
        cancelUpload?.();
        req.unpipe();
        req.resume();
      }
    };

    const headers = endToEndHeaders(req.headers, [INTERNAL_HEADER_PREFIX]);
    // Node's server answered "100 Continue" itself; the expectation ends at this hop (and
    // the client's HTTP library refuses it). "Content-Length: 0" frames nothing.
    if (headers.expect !== undefined) delete headers.expect;
    if (!hasBody && headers['content-length'] !== undefined) delete headers['content-length'];
    const pathAndQuery = `${url.pathname}${url.search}`;
    const body = hasBody ? limitedBody(req, policy.maxRequestBytes, abort) : undefined;
    session
      .scrape({ name, port, method, pathAndQuery, headers, deadlineMs, body }, abort.signal)
      .then((response) => {
        cancelUpload = response.cancel;
        const code = response.headers[ERROR_CODE_HEADER];
        const outcome = (typeof code === 'string' && OUTCOME_BY_CODE[code]) || 'ok';
        const limit = policy.maxResponseBytes;
        const length = contentLength(response.headers['content-length']);
        const noBody = method === 'HEAD' || statusHasNoBody(response.status);
        const declared = length ?? 0;
        if (declared > limit) {
          done();
          response.cancel();
          const reason = `response of ${name}:${port}${path} is ${declared} bytes, over the limit of ${limit} (max_response_bytes)`;
          sendText(res, 413, `natprox: ${reason}`, { code: 'NATPROX_RESPONSE_TOO_LARGE' });
          finish('too_large', 413, { sessionId: session.id, reason });
          return;
        }
        let bytes = 0;
        let tooLarge: NatproxError | undefined;
        // The client's own error answers (403, 502, 504…) explain themselves in the body;
        // keep the start of it as the reason for logs and the status page.
        const ownAnswer = typeof code === 'string';
        let explanation = '';
        // No flushHeaders(): the head goes out with the first body chunk, in one write.
        res.writeHead(response.status, endToEndHeaders(response.headers));
        relayBody(
          response.body,
          res,
          {
            // A body that reached its declared length is whole however its stream ended, and
            // answers that have no body (HTTP/2 ends them with their head, trailer or not).
            abortSource: response.cancel,
            endedCleanly: () =>
              noBody || response.complete() || (length !== undefined && bytes === length),
            inspect: (chunk) => {
              bytes += chunk.length;
              if (ownAnswer && explanation.length < MAX_EXPLANATION)
                explanation += chunk.toString();
              if (bytes <= limit) return undefined;
              tooLarge = new NatproxError(
                'NATPROX_RESPONSE_TOO_LARGE',
                `response passed the limit of ${limit} bytes (max_response_bytes)`,
              );
              return tooLarge;
            },
          },
          (err) => {
            done();
            if (!err) {
              const reason = ownAnswer
                ? clientAnswerReason(explanation.slice(0, MAX_EXPLANATION))
                : undefined;
              finish(outcome, response.status, {
                bytes,
                sessionId: session.id,
                ...(reason ? { reason } : {}),
              });
              return;
            }
            if (declared > 0 && bytes === declared) {
              // The scraper had the whole declared body and closed before the end-of-body
              // trailer arrived: a complete scrape, not a cancelled one.
              finish(outcome, response.status, { bytes, sessionId: session.id });
              return;
            }
            const cause = abort.signal.aborted ? (abort.signal.reason as unknown) : err;
            const outcomeOnError =
              abortOutcome(abort.signal, res) ??
              (tooLarge && err === tooLarge ? 'too_large' : 'client_lost');
            finish(outcomeOnError, response.status, {
              bytes,
              sessionId: session.id,
              reason: `body cut off: ${errorMessage(cause)}`,
            });
          },
        );
      })
      .catch((err: unknown) => {
        done();
        const outcome = abortOutcome(abort.signal, res);
        if (outcome === 'cancelled') {
          finish('cancelled', 0, { sessionId: session.id, reason: 'scraper closed the request' });
          return;
        }
        const code = err instanceof NatproxError ? err.code : 'NATPROX_CLIENT_LOST';
        const status = STATUS_BY_CODE[code] ?? 502;
        const reason = errorMessage(err);
        // The rest of a body over the limit is not read: the connection goes with the answer.
        const tooLarge = code === 'NATPROX_REQUEST_TOO_LARGE';
        sendText(res, status, `natprox: ${reason}`, {
          code,
          ...(tooLarge ? { headers: { connection: 'close' } } : {}),
        });
        const failed =
          status === 504
            ? 'timeout'
            : status === 503
              ? 'no_client'
              : tooLarge
                ? 'too_large'
                : 'client_lost';
        finish(failed, status, { sessionId: session.id, reason });
      });
  }
}

/**
 * The request body as the session streams it: past `limit` bytes (a chunked body, whose
 * size nobody declared) the scrape is cancelled with NATPROX_REQUEST_TOO_LARGE (413).
 */
function limitedBody(req: IncomingMessage, limit: number, abort: AbortController): Readable {
  let seen = 0;
  req.on('error', ignore);
  return req.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        if (seen <= limit) {
          callback(null, chunk);
          return;
        }
        abort.abort(
          new NatproxError(
            'NATPROX_REQUEST_TOO_LARGE',
            `request body passed the limit of ${limit} bytes (max_request_bytes)`,
          ),
        );
        callback();
      },
    }),
  );
}

/** Whether a request has a body: a Content-Length above 0, or any Transfer-Encoding. */
function carriesBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && contentLength(length) !== 0;
}

/** Longest part of a client's error answer kept as the reason. */
const MAX_EXPLANATION = 512;

function abortOutcome(signal: AbortSignal, res: ServerResponse): ScrapeOutcome | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof NatproxError && reason.code === 'NATPROX_SCRAPE_TIMEOUT') return 'timeout';
  if (reason instanceof NatproxError && reason.code === 'NATPROX_REQUEST_TOO_LARGE') {
    return 'too_large';
  }
  return res.writableFinished ? undefined : 'cancelled';
}
