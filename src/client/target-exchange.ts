import type {
  ClientRequest,
  IncomingHttpHeaders,
  IncomingMessage,
  RequestOptions,
} from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { ignore } from '../util/ignore.js';
import type { Clock, ClockTimer } from '../util/clock.js';
import { abortRelayDestination, writeWithRoom } from '../util/relay-body.js';
import type {
  BodyRelayOptions,
  LocalFetch,
  LocalFetchHandlers,
  TargetResponse,
} from './local-scrape.js';
import { sendRequestBody } from './request-body.js';

const BODY_CUT_OFF = 'the target closed the connection before the end of the body';

/** `http.request` or `https.request`. */
export type RequestFunction = (options: RequestOptions) => ClientRequest;

/**
 * One fetch from request to the end of its body, on node:http. One object per scrape, a
 * class with fixed fields, and its listeners bound once per object: this is the client's
 * hot path. The response body waits in Node's stream (which stops reading the socket) until
 * `relay` asks for it, then flows with `data` events, paused while the destination is full.
 */
export class TargetExchange implements LocalFetch, TargetResponse {
  stopped: 'deadline' | 'cancelled' | undefined = undefined;
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** The fetch is over for natprox: reported, relayed or dropped; later events are ignored. */
  private settled = false;
  private request: ClientRequest | undefined = undefined;
  private response: IncomingMessage | undefined = undefined;
  /** The request body when it is a stream: destroyed when the fetch ends early. */
  private requestBody: Readable | undefined = undefined;
  /** The response body's end arrived (and the target's message was complete). */
  private bodyEnded = false;
  private destination: Writable | undefined = undefined;
  private options: BodyRelayOptions = {};
  private relayDone: ((err?: Error) => void) | undefined = undefined;
  /** Why the body failed before anyone asked for it (handed to a late `relay`). */
  private failure: Error | undefined = undefined;
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

  /** Sends the request (and its body, if any); failures come back through the handlers. */
  send(request: RequestFunction, options: RequestOptions, body: Readable | Buffer | undefined) {
    let sent: ClientRequest;
    try {
      sent = request(options);
    } catch (err) {
      // Node checks the method, path and headers before anything is sent.
      this.onRequestError(err as Error);
      return;
    }
    this.request = sent;
    sent.on('response', this.onResponse);
    sent.on('error', this.onRequestError);
    if (body === undefined) sent.end();
    else if (Buffer.isBuffer(body)) sent.end(body);
    else {
      this.requestBody = body;
      sendRequestBody(sent, body);
    }
  }

  stop(why: 'deadline' | 'cancelled'): void {
    if (this.stopped || this.settled) return;
    this.stopped = why;
    this.fail(
      new Error(why === 'deadline' ? 'the scrape deadline passed' : 'the fetch was cancelled'),
    );
  }

  // --- node:http's side ---

  private readonly onResponse = (response: IncomingMessage): void => {
    if (this.settled) return; // stopped meanwhile: the request is destroyed
    this.response = response;
    this.statusCode = response.statusCode ?? 0;
    this.headers = response.headers;
    // A body cut off (target gone, wrong length, deadline) destroys the response without
    // an 'end'; 'close' comes either way, also before anyone asked for the body.
    response.on('close', this.onResponseClose);
    this.handlers.response(this);
  };

  private readonly onData = (chunk: Buffer): void => {
    const destination = this.destination;
    if (this.settled || destination === undefined) return;
    const problem = this.options.inspect?.(chunk);
    if (problem) {
      this.failBody(problem);
      return;
    }
    if (!writeWithRoom(destination, chunk)) this.response?.pause();
  };

  private readonly onEnd = (): void => {
    const destination = this.destination;
    if (this.settled || destination === undefined) return;
    if (!this.response?.complete) {
      this.failBody(new Error(BODY_CUT_OFF));
      return;
    }
    this.bodyEnded = true;
    // HTTP/2 ends a 204 or 304 answer's stream with its head: nothing is left to end.
    if (destination.writableFinished) {
      this.finishRelay();
      return;
    }
    // The callback gets an error when the destination was destroyed before the end.
    destination.end(this.onDestinationEnded);
  };

  private readonly onResponseClose = (): void => {
    if (this.settled || this.bodyEnded) return;
    this.failBody(new Error(BODY_CUT_OFF));
  };

  /** Errors of the connection: before the answer a failed fetch, after it a cut-off body. */
  private readonly onRequestError = (err: Error): void => {
    if (this.settled) return;
    this.fail(err);
  };

  // --- the transport's side ---

  relay(destination: Writable, options: BodyRelayOptions, done: (err?: Error) => void): void {
    const response = this.response;
    if (this.settled || response === undefined) {
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
    response.on('data', this.onData);
    response.on('end', this.onEnd);
  }

  discard(): void {
    if (this.settled) return;
    this.settle();
    this.abort();
  }

  private readonly onDrain = (): void => {
    if (!this.settled) this.response?.resume();
  };

  private readonly onDestinationEnded = (err?: Error | null): void => {
    this.finishRelay(err ?? undefined);
  };

  private readonly onDestinationClose = (): void => {
    if (this.settled || this.destination?.writableFinished) return;
    if (this.destination?.writableEnded && this.options.deliveredWhenClosed?.()) {
      this.finishRelay();
      return;
    }
    this.failBody(new Error('the receiving side closed early'));
  };

  /** Ends the fetch with `err`: reported as a failure before the answer, else a cut-off body. */
  private fail(err: Error): void {
    if (this.response !== undefined) {
      this.failBody(err);
      return;
    }
    this.settle();
    this.abort();
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

  private failBody(err: Error): void {
    if (this.settled) return;
    this.failure = err;
    const destination = this.destination;
    if (destination) abortRelayDestination(destination, this.options, err);
    this.finishRelay(err);
    this.abort();
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

  /** Drops the connection (a half-read answer cannot be reused) and an unsent request body. */
  private abort(): void {
    if (this.request !== undefined && !this.request.destroyed) this.request.destroy();
    if (this.requestBody !== undefined && !this.requestBody.readableEnded) {
      this.requestBody.destroy();
    }
  }

  private settle(): void {
    this.settled = true;
    this.clock.clearTimeout(this.deadline);
    this.inFlight.delete(this);
  }
}

/**
 * What went wrong, for the 502's text: the system's code (ECONNREFUSED…) for a system error,
 * else Node's message with its code (HPE_HEADER_OVERFLOW, ERR_TLS_CERT_ALTNAME_INVALID…).
 */
function errorCause(err: Error): string {
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (code !== undefined && syscall !== undefined) return code;
  // Node's words for a connection closed before the answer began.
  if (err.message === 'socket hang up') {
    return 'the target closed the connection without answering (socket hang up)';
  }
  return code === undefined || err.message.includes(code)
    ? err.message
    : `${err.message} (${code})`;
}
