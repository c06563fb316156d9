import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { ignore } from '../util/ignore.js';
import { errorMessage, NatproxError } from '../errors.js';
import { contentLength, endToEndHeaders, statusHasNoBody } from '../util/headers.js';
import { relayBody, type RelayOptions } from '../util/relay-body.js';
import { ScrapeCancel, type CancelSignal } from '../util/scrape-cancel.js';
import { bodyIsWhole, wholeBeforeFailure } from '../wire/body-completion.js';
import {
  failureFor,
  isScrapeFailureCode,
  proxyOutcomeOfCode,
  type ScrapeFailureCode,
} from '../wire/failures.js';
import { clientAnswerReason, ERROR_CODE_HEADER, INTERNAL_HEADER_PREFIX } from '../wire/protocol.js';
import type { ClientSession, ScrapeResponse } from './client-session.js';
import { scrapeDeadlineMs } from './deadline.js';
import { sendFailure } from './plain-response.js';
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

/**
 * Serves absolute-form forward-proxy requests (`GET http://NAME:PORT/PATH`): each is a
 * ProxiedScrape.
 */
export class ScrapeHandler {
  constructor(private readonly options: ScrapeHandlerOptions) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    new ProxiedScrape(this.options, req, res).start();
  }
}

/**
 * One scrape, in the order it runs: `parse` the target, `route` it to the session serving
 * NAME, `open` a stream with the scrape's deadline, `relay` the answer back with
 * back-pressure (or `fail`), and `finish`: every way it can end is reported there, once,
 * through `events`. Refusals are answered through the failure table (`refuse`).
 *
 * A class with fixed fields rather than closures: this is the proxy's hot path. For the
 * same reason the scrape is its own relay's options (`endedCleanly`, `inspect`,
 * `abortSource`), and the deadline timer gets it as an argument.
 */
class ProxiedScrape implements RelayOptions {
  private readonly startedAt = performance.now();
  private readonly policy: ScrapePolicy;
  /** Not an AbortController: see ScrapeCancel. */
  private readonly abort = new ScrapeCancel();
  private name = '';
  private port = 0;
  private path = '';
  private method = 'GET';
  private hasBody = false;
  private deadlineMs = 0;
  private deadline: NodeJS.Timeout | undefined = undefined;
  private sessionId: string | undefined = undefined;
  private release: (() => void) | undefined = undefined;
  /** The request body as it streams to the client, when the request has one. */
  private upload: Readable | undefined = undefined;
  private response: ScrapeResponse | undefined = undefined;
  /** Set when the scrape is over for the stream: deadline, slot and upload let go. */
  private settled = false;
  /** Set when the scrape is reported. */
  private finished = false;
  // The relay of the answer:
  private outcome: ScrapeOutcome = 'ok';
  private declaredLength: number | undefined = undefined;
  private noBody = false;
  private bytes = 0;
  private tooLarge: NatproxError | undefined = undefined;
  /**
   * The client's own error answers (403, 502, 504…) explain themselves in the body; the
   * start of it is kept as the reason for logs and the status page.
   */
  private ownAnswer = false;
  private explanation = '';

  constructor(
    private readonly options: ScrapeHandlerOptions,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.policy = options.policy();
  }

  start(): void {
    const url = this.parse();
    if (url === undefined) return;
    const session = this.route();
    if (session === undefined) return;
    this.open(session, url);
  }

  /** The target URL, or undefined when the request was refused. */
  private parse(): URL | undefined {
    const { req } = this;
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      // Not reported: there is no name to report it under.
      sendFailure(this.res, 'NATPROX_BAD_REQUEST', `cannot parse the request target "${req.url}"`);
      return undefined;
    }
    this.name = url.hostname.toLowerCase();
    this.port = url.port === '' ? 80 : Number(url.port);
    this.path = url.pathname;
    if (url.protocol !== 'http:') {
      const reason = `only http:// targets can be scraped through natprox, got ${url.protocol}//`;
      this.refuse('NATPROX_BAD_REQUEST', reason);
      return undefined;
    }
    // Any method goes on: the client's allowlist decides (GET and HEAD unless it grants
    // more), so a POST to a remote-read path the client allows works, and nothing else.
    const method = req.method ?? 'GET';
    this.method = method;
    const bodiless = method === 'GET' || method === 'HEAD';
    const hasBody = carriesBody(req);
    this.hasBody = hasBody;
    const declaredBody = contentLength(req.headers['content-length']) ?? 0;
    const limit = this.policy.maxRequestBytes;
    if (hasBody && declaredBody > limit) {
      const reason = `request body of ${declaredBody} bytes is over the limit of ${limit} (max_request_bytes)`;
      this.refuse('NATPROX_REQUEST_TOO_LARGE', reason, CLOSE_CONNECTION);
      return undefined;
    }
    if (bodiless && hasBody) {
      // A GET or HEAD has no body to send on (HTTP/2 would reset a stream that named one).
      const reason = `a ${req.method} request carries no body, but this one has one (Content-Length or Transfer-Encoding); send the request without a body`;
      this.refuse('NATPROX_BAD_REQUEST', reason, CLOSE_CONNECTION);
      return undefined;
    }
    return url;
  }

  /** The session serving the name, with a stream slot taken; undefined when refused. */
  private route(): ClientSession | undefined {
    const { name, policy } = this;
    const session = this.options.registry.lookup(name);
    if (!session) {
      this.refuse('NATPROX_NO_CLIENT', `no client is connected for name "${name}"`);
      return undefined;
    }
    this.sessionId = session.id;
    const release = this.options.streams.acquire(
      session,
      policy,
      this.req.headers['proxy-authorization'],
    );
    if (typeof release === 'string') {
      this.refuse('NATPROX_CLIENT_BUSY', busyReason(name, policy, release), RETRY_AFTER);
      return undefined;
    }
    this.release = release;
    return session;
  }

  /** Opens the stream: the deadline runs from here, and the scraper's leaving cancels it. */
  private open(session: ClientSession, url: URL): void {
    const { req, res, policy, abort } = this;
    const deadlineMs = scrapeDeadlineMs(
      req.headers['x-prometheus-scrape-timeout-seconds'],
      policy.defaultScrapeTimeoutMs,
      policy.maxScrapeTimeoutMs,
    );
    this.deadlineMs = deadlineMs;
    this.deadline = setTimeout(ProxiedScrape.deadlinePassed, deadlineMs, this);
    // Stays on `res` when the scrape is done (`settled` guards it): res serves this request only.
    res.on('close', () => {
      if (!this.settled && !res.writableFinished) {
        abort.abort(new NatproxError('NATPROX_SCRAPE_CANCELLED', 'scraper closed the request'));
      }
    });

    const headers = endToEndHeaders(req.headers, [INTERNAL_HEADER_PREFIX]);
    // Node's server answered "100 Continue" itself; the expectation ends at this hop (and
    // the client's HTTP library refuses it). "Content-Length: 0" frames nothing.
    if (headers.expect !== undefined) delete headers.expect;
    if (!this.hasBody && headers['content-length'] !== undefined) delete headers['content-length'];
    const body = this.hasBody ? limitedBody(req, policy.maxRequestBytes, abort) : undefined;
    this.upload = body;
    const { name, port, method } = this;
    const pathAndQuery = `${url.pathname}${url.search}`;
    session
      .scrape({ name, port, method, pathAndQuery, headers, deadlineMs, body }, abort.signal)
      .then((response) => this.relay(response))
      .catch((err: unknown) => this.fail(err));
  }

  private static deadlinePassed(scrape: ProxiedScrape): void {
    const { name, port, path, deadlineMs } = scrape;
    scrape.abort.abort(
      new NatproxError(
        'NATPROX_SCRAPE_TIMEOUT',
        `scrape of ${name}:${port}${path} did not finish within ${Math.round(deadlineMs)} ms`,
      ),
    );
  }

  /** Streams the client's answer to the scraper (or refuses one over max_response_bytes). */
  private relay(response: ScrapeResponse): void {
    this.response = response;
    const code = response.headers[ERROR_CODE_HEADER];
    this.outcome = proxyOutcomeOfCode(code) ?? 'ok';
    this.ownAnswer = typeof code === 'string';
    const length = contentLength(response.headers['content-length']);
    this.declaredLength = length;
    this.noBody = this.method === 'HEAD' || statusHasNoBody(response.status);
    const limit = this.policy.maxResponseBytes;
    if (length !== undefined && length > limit) {
      this.settle();
      response.cancel();
      const { name, port, path } = this;
      const reason = `response of ${name}:${port}${path} is ${length} bytes, over the limit of ${limit} (max_response_bytes)`;
      this.refuse('NATPROX_RESPONSE_TOO_LARGE', reason);
      return;
    }
    // No flushHeaders(): the head goes out with the first body chunk, in one write.
    this.res.writeHead(response.status, endToEndHeaders(response.headers));
    relayBody(response.body, this.res, this, (err) => this.relayed(err));
  }

  // RelayOptions, for relayBody:

  /** A body is whole or cut off as body-completion says. */
  endedCleanly(): boolean {
    const response = this.response as ScrapeResponse;
    return bodyIsWhole(this.noBody, response.complete(), this.declaredLength, this.bytes);
  }

  inspect(chunk: Buffer): Error | undefined {
    this.bytes += chunk.length;
    if (this.ownAnswer && this.explanation.length < MAX_EXPLANATION) {
      this.explanation += chunk.toString();
    }
    const limit = this.policy.maxResponseBytes;
    if (this.bytes <= limit) return undefined;
    this.tooLarge = new NatproxError(
      'NATPROX_RESPONSE_TOO_LARGE',
      `response passed the limit of ${limit} bytes (max_response_bytes)`,
    );
    return this.tooLarge;
  }

  abortSource(): void {
    this.response?.cancel();
  }

  /** The relay is over: the body went whole, or `err` broke it. */
  private relayed(err: Error | undefined): void {
    this.settle();
    const status = (this.response as ScrapeResponse).status;
    if (!err) {
      const reason = this.ownAnswer
        ? clientAnswerReason(this.explanation.slice(0, MAX_EXPLANATION))
        : undefined;
      this.finish(this.outcome, status, reason);
      return;
    }
    if (wholeBeforeFailure(this.declaredLength, this.bytes)) {
      // The scraper had the whole declared body and closed before the end-of-body
      // trailer arrived: a complete scrape, not a cancelled one.
      this.finish(this.outcome, status);
      return;
    }
    const { abort } = this;
    const cause = abort.signal.aborted ? (abort.signal.reason as unknown) : err;
    const outcome =
      abortOutcome(abort.signal, this.res) ??
      (this.tooLarge && err === this.tooLarge ? 'too_large' : 'client_lost');
    this.finish(outcome, status, `body cut off: ${errorMessage(cause)}`);
  }

  /** No answer came: the scraper left, the deadline passed or the client was lost. */
  private fail(err: unknown): void {
    this.settle();
    if (abortOutcome(this.abort.signal, this.res) === 'cancelled') {
      this.finish('cancelled', 0, 'scraper closed the request');
      return;
    }
    const code =
      err instanceof NatproxError && isScrapeFailureCode(err.code)
        ? err.code
        : 'NATPROX_CLIENT_LOST';
    // The rest of a body over the limit is not read: the connection goes with the answer.
    const headers = code === 'NATPROX_REQUEST_TOO_LARGE' ? CLOSE_CONNECTION : undefined;
    this.refuse(code, errorMessage(err), headers);
  }

  /** The stream is done with: the deadline, the slot and the rest of the upload let go. */
  private settle(): void {
    this.settled = true;
    clearTimeout(this.deadline);
    this.release?.();
    // The answer is through before the whole request body went (a target or the client
    // answered early): stop sending it, so the stream does not outlive the scrape, and
    // read the rest away as Node does for a body nobody reads, so the connection can
    // carry the next request.
    const { req } = this;
    if (this.upload && !req.readableEnded) {
      this.response?.cancel();
      req.unpipe();
      req.resume();
    }
  }

  /** Answers with the failure table's status for `code`, and reports its outcome. */
  private refuse(code: ScrapeFailureCode, reason: string, headers?: Record<string, string>): void {
    sendFailure(this.res, code, reason, headers);
    const failure = failureFor(code);
    this.finish(failure.proxy, failure.status, reason);
  }

  /** Reports how the scrape ended, once. */
  private finish(outcome: ScrapeOutcome, status: number, reason?: string): void {
    if (this.finished) return;
    this.finished = true;
    const info: ScrapeFinished = {
      name: this.name,
      port: this.port,
      path: this.path,
      outcome,
      status,
      durationMs: performance.now() - this.startedAt,
      bytes: this.bytes,
    };
    if (this.sessionId) info.sessionId = this.sessionId;
    if (reason) info.reason = reason;
    this.options.events.emit('scrapeFinished', info);
  }
}

/**
 * The request body as the session streams it: past `limit` bytes (a chunked body, whose
 * size nobody declared) the scrape is cancelled with NATPROX_REQUEST_TOO_LARGE (413).
 */
function limitedBody(req: IncomingMessage, limit: number, abort: ScrapeCancel): Readable {
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

const CLOSE_CONNECTION = { connection: 'close' };
const RETRY_AFTER = { 'retry-after': '1' };

/** Longest part of a client's error answer kept as the reason. */
const MAX_EXPLANATION = 512;

/** How an aborted scrape ended, by the abort's reason; undefined when it was not aborted. */
function abortOutcome(signal: CancelSignal, res: ServerResponse): ScrapeOutcome | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  // The deadline (timeout) or a request body over the limit (too_large).
  if (reason instanceof NatproxError && isScrapeFailureCode(reason.code)) {
    return failureFor(reason.code).proxy;
  }
  return res.writableFinished ? undefined : 'cancelled';
}
