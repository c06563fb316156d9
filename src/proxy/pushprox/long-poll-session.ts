import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { NatproxError } from '../../errors.js';
import { realClock, type Clock, type ClockTimer } from '../../util/clock.js';
import type { CancelSignal } from '../../util/scrape-cancel.js';
import type { ClientSession, ScrapeRequest, ScrapeResponse } from '../client-session.js';
import type { Registration } from '../../wire/protocol.js';
import { isClientMadeError, translateClientError } from './client-error.js';
import type { PendingScrape, PendingScrapes } from './pending-scrapes.js';
import { writeProxyRequest } from '../../wire/pushprox/request-writer.js';
import type { PushedResponse } from '../../wire/pushprox/response-reader.js';
import {
  ID_HEADER,
  REMAINING_TIMEOUT_HEADER,
  SCRAPE_TIMEOUT_SECONDS_HEADER,
} from '../../wire/pushprox/wire-format.js';

export interface LongPollTimings {
  /**
   * A client with no poll waiting that polled within this long is still polling: it is
   * between answering one poll and sending the next, and a scrape waits (within its own
   * deadline) for that next poll. Past it, with no scrape of its in flight either, the
   * client is gone: it leaves /clients and stops counting against any limit.
   */
  repollGraceMs: number;
  /** What the grace is measured with (tests give a fake one); the real clock if not set. */
  clock?: Clock | undefined;
}

export const DEFAULT_LONG_POLL_TIMINGS: LongPollTimings = {
  repollGraceMs: 5_000,
};

/** A poll held open until a scrape is handed to it. */
interface WaitingPoll {
  res: ServerResponse;
  stopWatching: () => void;
}

/** A scrape waiting for the next poll. */
interface QueuedScrape {
  request: ScrapeRequest;
  /** The request body, read in full: a poll answer carries it after the head. */
  body: Buffer | undefined;
  signal: CancelSignal;
  resolve: (response: ScrapeResponse) => void;
  reject: (err: unknown) => void;
  stopWatching: () => void;
}

/** Pushed headers that belong to PushProx's protocol, not to the target's answer. */
const PROTOCOL_HEADERS = [ID_HEADER, REMAINING_TIMEOUT_HEADER, SCRAPE_TIMEOUT_SECONDS_HEADER];

/**
 * One PushProx client (one FQDN) as the proxy's routing sees it. It has no connection of
 * its own: each scrape is handed out as the answer to one of its waiting polls and comes
 * back as a push. Several waiting polls are all valid; a poll whose connection closed is
 * dropped at once and never handed a scrape.
 */
export class LongPollSession implements ClientSession {
  readonly id = randomUUID();
  readonly transport = 'pushprox' as const;
  readonly connectedAt: Date;
  readonly registration: Registration;
  private remote: string;
  private grant: string | undefined;
  private readonly polls: WaitingPoll[] = [];
  private readonly queue: QueuedScrape[] = [];
  private lastPollAt: number;
  private readonly clock: Clock;
  /** Scrapes handed to a poll whose push has not come back yet. */
  private dispatched = 0;
  private lapseTimer: ClockTimer | undefined;
  private graceTimer: ClockTimer | undefined;
  private closeReason: string | undefined;
  private readonly closeListeners: Array<(reason: string) => void> = [];

  constructor(
    /** The FQDN as the client polled with it, case kept. */
    readonly fqdn: string,
    remoteAddress: string,
    grantKey: string | undefined,
    private readonly pending: PendingScrapes,
    private readonly timings: LongPollTimings,
  ) {
    this.clock = timings.clock ?? realClock;
    this.connectedAt = new Date(this.clock.now());
    this.lastPollAt = this.clock.now();
    this.registration = {
      names: [fqdn.toLowerCase()],
      labels: {},
      // A PushProx client does not say which ports it serves; /clients lists the bare name.
      ports: [],
      version: 'pushprox',
    };
    this.remote = remoteAddress;
    this.grant = grantKey;
    this.armLapseTimer();
  }

  get remoteAddress(): string {
    return this.remote;
  }

  get grantKey(): string | undefined {
    return this.grant;
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Polls waiting now, for tests and the status page. */
  get waitingPolls(): number {
    return this.polls.length;
  }

  /** Whether a scrape can be handed out now: some poll is waiting on an open connection. */
  get ready(): boolean {
    return !this.closed && this.polls.some(({ res }) => isOpen(res));
  }

  /** Takes a poll: answers it at once when a scrape waits, else holds it open. */
  addPoll(res: ServerResponse, remoteAddress: string, grantKey: string | undefined): void {
    this.remote = remoteAddress;
    this.grant = grantKey;
    this.lastPollAt = this.clock.now();
    this.disarmLapseTimer();
    const queued = this.queue.shift();
    if (queued) {
      queued.stopWatching();
      this.dispatch(queued, res);
      this.afterPollEnded();
      return;
    }
    const onClose = (): void => {
      const index = this.polls.indexOf(poll);
      if (index >= 0) this.polls.splice(index, 1);
      this.afterPollEnded();
    };
    const poll: WaitingPoll = { res, stopWatching: () => res.off('close', onClose) };
    res.once('close', onClose);
    this.polls.push(poll);
  }

  scrape(request: ScrapeRequest, signal: CancelSignal): Promise<ScrapeResponse> {
    if (request.body) {
      // A poll answer is one message: the body is read first (its size is limited already,
      // and the scrape's deadline and cancellation stop the reading).
      const source = request.body;
      return readWhole(source, signal).then((body) => this.schedule(request, body, signal));
    }
    return this.schedule(request, undefined, signal);
  }

  private schedule(
    request: ScrapeRequest,
    body: Buffer | undefined,
    signal: CancelSignal,
  ): Promise<ScrapeResponse> {
    if (this.closed) {
      return Promise.reject(
        new NatproxError('NATPROX_CLIENT_LOST', `PushProx client is gone: ${this.closeReason}`),
      );
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const queued: QueuedScrape = {
        request,
        body,
        signal,
        resolve,
        reject,
        stopWatching: () => {},
      };
      const res = this.takePoll();
      if (res) {
        this.dispatch(queued, res);
        this.afterPollEnded();
        return;
      }
      const sincePollMs = this.clock.now() - this.lastPollAt;
      if (sincePollMs > this.timings.repollGraceMs) {
        reject(this.notPolling(sincePollMs));
        return;
      }
      // Between two polls: wait for the next one, within the scrape's own deadline.
      const onAbort = (): void => {
        this.unqueue(queued);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queued.stopWatching = () => signal.removeEventListener('abort', onAbort);
      this.queue.push(queued);
      this.armGraceTimer();
    });
  }

  close(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.disarmLapseTimer();
    this.clock.clearTimeout(this.graceTimer);
    for (const poll of this.polls.splice(0)) {
      poll.stopWatching();
      if (!poll.res.headersSent && !poll.res.destroyed) {
        poll.res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        poll.res.end(`natprox: ${reason}\n`);
      }
    }
    for (const queued of this.queue.splice(0)) {
      queued.stopWatching();
      queued.reject(new NatproxError('NATPROX_CLIENT_LOST', `PushProx client is gone: ${reason}`));
    }
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closeReason !== undefined) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  /**
   * The newest waiting poll whose connection is still open. Newest first: a poll that has
   * waited long is the likeliest to sit on a connection a middlebox dropped without a word.
   */
  private takePoll(): ServerResponse | undefined {
    while (this.polls.length > 0) {
      const poll = this.polls.pop() as WaitingPoll;
      poll.stopWatching();
      if (isOpen(poll.res)) return poll.res;
    }
    return undefined;
  }

  /** Answers `res` with the scrape and waits for its push. */
  private dispatch(queued: QueuedScrape, res: ServerResponse): void {
    const { request, signal } = queued;
    const id = randomUUID();
    let settled = false;
    this.dispatched += 1;
    const cleanup = (): void => {
      settled = true;
      this.dispatched -= 1;
      if (this.polls.length === 0) this.armLapseTimer();
      signal.removeEventListener('abort', onAbort);
      res.off('close', onPollLost);
      this.pending.remove(entry);
    };
    const onAbort = (): void => {
      if (settled) return;
      cleanup();
      queued.reject(signal.reason);
    };
    // The answer never left: the scrape goes back to the front of the queue for the next poll.
    const onPollLost = (): void => {
      if (settled || res.writableFinished) return;
      cleanup();
      this.requeue(queued);
    };
    const entry: PendingScrape = {
      id,
      name: request.name,
      deliver: (pushed) => {
        if (settled) {
          pushed.body.destroy();
          return;
        }
        cleanup();
        this.lastPollAt = this.clock.now();
        this.toScrapeResponse(pushed).then(queued.resolve, queued.reject);
      },
    };
    signal.addEventListener('abort', onAbort, { once: true });
    res.once('close', onPollLost);
    this.pending.add(entry);
    const head = Buffer.from(
      writeProxyRequest({
        method: request.method,
        bodyLength: queued.body?.length,
        fqdn: this.fqdn,
        port: request.port,
        pathAndQuery: request.pathAndQuery,
        headers: request.headers,
        id,
        timeoutSeconds: request.deadlineMs / 1000,
      }),
      'latin1',
    );
    const answer = queued.body ? Buffer.concat([head, queued.body]) : head;
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': answer.length,
    });
    res.end(answer);
  }

  private requeue(queued: QueuedScrape): void {
    if (queued.signal.aborted) return;
    const res = this.takePoll();
    if (res) {
      this.dispatch(queued, res);
      this.afterPollEnded();
      return;
    }
    const onAbort = (): void => {
      this.unqueue(queued);
      queued.reject(queued.signal.reason);
    };
    queued.signal.addEventListener('abort', onAbort, { once: true });
    queued.stopWatching = () => queued.signal.removeEventListener('abort', onAbort);
    this.queue.unshift(queued);
    this.armGraceTimer();
  }

  private async toScrapeResponse(pushed: PushedResponse): Promise<ScrapeResponse> {
    if (isClientMadeError(pushed)) {
      const translated = await translateClientError(pushed);
      return { ...translated, complete: () => true, cancel: () => translated.body.destroy() };
    }
    const headers = { ...pushed.headers };
    for (const name of PROTOCOL_HEADERS) delete headers[name];
    return {
      status: pushed.status,
      headers,
      body: pushed.body,
      complete: () => pushed.body.complete,
      cancel: () => pushed.body.destroy(),
    };
  }

  private unqueue(queued: QueuedScrape): void {
    const index = this.queue.indexOf(queued);
    if (index >= 0) this.queue.splice(index, 1);
    queued.stopWatching();
  }

  private notPolling(sincePollMs: number): NatproxError {
    return new NatproxError(
      'NATPROX_NO_CLIENT',
      `PushProx client "${this.fqdn}" has no poll waiting and has not polled for ${Math.round(sincePollMs)} ms; is it running and can it reach the proxy?`,
    );
  }

  /** Scrapes still queued when the grace runs out were waiting for a client that stopped. */
  private armGraceTimer(): void {
    if (this.graceTimer !== undefined) return;
    const waitMs = Math.max(0, this.lastPollAt + this.timings.repollGraceMs - this.clock.now());
    this.graceTimer = this.clock.setTimeout(() => {
      this.graceTimer = undefined;
      const sincePollMs = this.clock.now() - this.lastPollAt;
      if (sincePollMs < this.timings.repollGraceMs) {
        if (this.queue.length > 0) this.armGraceTimer();
        return;
      }
      for (const queued of this.queue.splice(0)) {
        queued.stopWatching();
        queued.reject(this.notPolling(sincePollMs));
      }
    }, waitMs + 1);
    this.graceTimer.unref?.();
  }

  private afterPollEnded(): void {
    this.lastPollAt = this.clock.now();
    if (this.polls.length === 0) this.armLapseTimer();
  }

  /**
   * With no poll waiting and no scrape in flight, a client that does not poll again within
   * the re-poll grace has stopped: it is closed, so it stops holding its name (a live
   * native tunnel for it serves at once), a max_clients slot and its entry's limits. A
   * PushProx client re-polls the moment a poll is answered, so a live one never lapses.
   */
  private armLapseTimer(): void {
    this.disarmLapseTimer();
    if (this.closed) return;
    const waitMs = Math.max(0, this.lastPollAt + this.timings.repollGraceMs - this.clock.now());
    this.lapseTimer = this.clock.setTimeout(() => {
      this.lapseTimer = undefined;
      if (this.polls.length > 0 || this.dispatched > 0) return;
      const sincePollMs = this.clock.now() - this.lastPollAt;
      if (sincePollMs < this.timings.repollGraceMs) {
        this.armLapseTimer();
        return;
      }
      for (const queued of this.queue.splice(0)) {
        queued.stopWatching();
        queued.reject(this.notPolling(sincePollMs));
      }
      this.close(`no poll for ${Math.round(sincePollMs / 1000)} s`);
    }, waitMs + 1);
    this.lapseTimer.unref?.();
  }

  private disarmLapseTimer(): void {
    this.clock.clearTimeout(this.lapseTimer);
    this.lapseTimer = undefined;
  }
}

function isOpen(res: ServerResponse): boolean {
  return !res.destroyed && !res.headersSent && res.socket !== null && !res.socket.destroyed;
}

/** All of `source`; rejects with the signal's reason when the scrape is cancelled first. */
function readWhole(source: Readable, signal: CancelSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      reject(signal.reason);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks));
    };
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    source.on('data', onData);
    source.once('end', onEnd);
  });
}
