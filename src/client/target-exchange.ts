import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { contentLength, headersFromRaw, statusHasNoBody } from '../util/headers.js';
import { ignore } from '../util/ignore.js';
import type { Clock, ClockTimer } from '../util/clock.js';
import { abortRelayDestination, writeWithRoom } from '../util/relay-body.js';
import type {
  BodyRelayOptions,
  LocalFetch,
  LocalFetchHandlers,
  TargetResponse,
} from './local-scrape.js';

/**
 * One fetch from request to the end of its body, as undici's dispatch handler. One object
 * per scrape, a class with fixed fields: this is the client's hot path.
 */
export class TargetExchange implements Dispatcher.DispatchHandlers, LocalFetch, TargetResponse {
  stopped: 'deadline' | 'cancelled' | undefined = undefined;
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** The fetch is over for natprox: reported, relayed or dropped; later callbacks are ignored. */
  private settled = false;
  private abortRequest: ((err: Error) => void) | undefined = undefined;
  private resumeBody: (() => void) | undefined = undefined;
  private answered = false;
  /** undici was told to pause after the head: nobody asked for the body yet. */
  private pausedForRelay = false;
  private destination: Writable | undefined = undefined;
  private options: BodyRelayOptions = {};
  private relayDone: ((err?: Error) => void) | undefined = undefined;
  /** Why the body failed before anyone asked for it (handed to a late `relay`). */
  private failure: Error | undefined = undefined;
  /**
   * A 204 or 304 that names a Content-Length: it has no body (RFC 9110, 6.4.1), but undici
   * waits for one; the relay ends it at once and lets undici go.
   */
  private phantomBody = false;
  /** undici's callbacks no longer concern this exchange (see phantomBody). */
  private detached = false;
  private readonly deadline: ClockTimer;

  constructor(
    private readonly handlers: LocalFetchHandlers,
    private readonly inFlight: Set<TargetExchange>,
    private readonly deadlineMs: number,
    private readonly where: string,
    /** The deadline's timer; the real clock costs nothing beyond the timer itself. */
    private readonly clock: Clock,
  ) {
    this.deadline = clock.setTimeout(() => this.stop('deadline'), deadlineMs);
    inFlight.add(this);
  }

  stop(why: 'deadline' | 'cancelled'): void {
    if (this.stopped || this.settled) return;
    this.stopped = why;
    const err = new Error(
      why === 'deadline' ? 'the scrape deadline passed' : 'the fetch was cancelled',
    );
    // Not yet on a connection (queued or connecting): end it here; onConnect aborts it later.
    if (this.abortRequest) this.abortRequest(err);
    else this.onError(err);
  }

  // --- undici's side ---

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
    if (this.settled || this.stopped) abort(new Error('the fetch was stopped'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.settled) return true;
    if (statusCode < 200) return true; // 1xx: informational, the real answer follows
    this.statusCode = statusCode;
    this.headers = headersFromRaw(rawHeaders);
    this.phantomBody =
      statusHasNoBody(statusCode) && (contentLength(this.headers['content-length']) ?? 0) > 0;
    this.resumeBody = resume;
    this.answered = true;
    this.handlers.response(this);
    // Paused until `relay` is called, unless it was called from inside `response`.
    this.pausedForRelay = this.destination === undefined && !this.settled;
    return !this.pausedForRelay;
  }

  onData(chunk: Buffer): boolean {
    const destination = this.destination;
    if (this.settled || this.detached) return true;
    if (destination === undefined) return false; // not asked for yet: wait
    const problem = this.options.inspect?.(chunk);
    if (problem) {
      this.failBody(problem);
      this.abortRequest?.(problem);
      return false;
    }
    return writeWithRoom(destination, chunk);
  }

  onComplete(): void {
    const destination = this.destination;
    if (this.settled || this.detached || destination === undefined) return;
    // The callback gets an error when the destination was destroyed before the end.
    destination.end((err?: Error | null) => this.finishRelay(err ?? undefined));
  }

  onError(err: Error): void {
    if (this.settled || this.detached) return;
    if (this.answered) {
      this.failBody(err);
      return;
    }
    this.settle();
    if (this.stopped === 'cancelled') {
      this.handlers.cancelled();
      return;
    }
    if (this.stopped === 'deadline') {
      this.handlers.refused(
        'NATPROX_SCRAPE_TIMEOUT',
        `${this.where} did not answer within ${this.deadlineMs} ms`,
      );
      return;
    }
    this.handlers.refused(
      'NATPROX_TARGET_FAILED',
      `fetching ${this.where} failed: ${errorCause(err)}`,
    );
  }

  // --- the transport's side ---

  relay(destination: Writable, options: BodyRelayOptions, done: (err?: Error) => void): void {
    if (this.settled) {
      // The body failed (or the deadline passed) while nobody was reading it yet.
      const err = this.failure ?? new Error('the answer was dropped');
      abortRelayDestination(destination, options, err);
      done(err);
      return;
    }
    this.destination = destination;
    this.options = options;
    this.relayDone = done;
    destination.on('drain', this.onDrain);
    destination.once('close', this.onDestinationClose);
    destination.on('error', ignore);
    if (this.phantomBody) {
      this.detached = true;
      this.abortRequest?.(new Error('a 204 or 304 answer has no body'));
      destination.end((err?: Error | null) => this.finishRelay(err ?? undefined));
      return;
    }
    if (this.pausedForRelay) {
      this.pausedForRelay = false;
      this.resumeBody?.();
    }
  }

  discard(): void {
    if (this.settled) return;
    this.settle();
    this.abortRequest?.(new Error('the answer was dropped'));
  }

  private readonly onDrain = (): void => {
    if (!this.settled) this.resumeBody?.();
  };

  private readonly onDestinationClose = (): void => {
    if (this.settled || this.destination?.writableFinished) return;
    if (this.destination?.writableEnded && this.options.deliveredWhenClosed?.()) {
      this.finishRelay();
      return;
    }
    const err = new Error('the receiving side closed early');
    this.failBody(err);
    this.abortRequest?.(err);
  };

  private failBody(err: Error): void {
    if (this.settled) return;
    this.failure = err;
    const destination = this.destination;
    if (destination) abortRelayDestination(destination, this.options, err);
    this.finishRelay(err);
  }

  private finishRelay(err?: Error): void {
    if (this.settled) return;
    this.settle();
    const destination = this.destination;
    if (destination) {
      destination.off('drain', this.onDrain);
      destination.off('close', this.onDestinationClose);
    }
    this.relayDone?.(err);
  }

  private settle(): void {
    this.settled = true;
    this.clock.clearTimeout(this.deadline);
    this.inFlight.delete(this);
  }
}

/** The system's error code (ECONNREFUSED…) when there is one, else undici's message. */
function errorCause(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !code.startsWith('UND_ERR') ? code : err.message;
}
