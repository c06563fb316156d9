import { errorMessage, NatproxError } from '../errors.js';
import { realClock, sleep, type Clock } from '../util/clock.js';
import { Backoff, failureKind, type BackoffOptions, type FailureKind } from './backoff.js';
import type { ClientEvents, ConnectionState } from './client-events.js';
import type { TunnelName } from './proxy-endpoint.js';

/** A failed attempt that took this long counts its time against the next delay. */
const SPENT_DIALING_MS = 100;

/** What a transport's attempt tells the loop while it runs. */
export interface AttemptControl {
  /** Aborts (with NATPROX_STOPPED) when the loop stops: end the attempt then. */
  readonly signal: AbortSignal;
  /** The tunnel is up: the attempt count starts over, and the state is `connected`. */
  up(): void;
  /** The proxy took the tunnel, nothing more yet: the state is `connected`. */
  connected(): void;
  /** The proxy answered as it should: the next delay starts from the initial one. */
  resetBackoff(): void;
}

/**
 * One turn of the loop: dial, then serve. Resolves with why a tunnel that was up dropped;
 * rejects with why the dial (or the transport) failed.
 */
export type TunnelAttempt = (control: AttemptControl) => Promise<string>;

export interface ReconnectLoopOptions {
  attempt: TunnelAttempt;
  events: ClientEvents;
  backoff: BackoffOptions;
  /** A tunnel that stayed up this long starts the delays over when it drops. */
  resetBackoffAfterMs?: number;
  /** Which tunnel this is, for the state events (metrics and logs name it). */
  tunnel: TunnelName;
  clock?: Clock;
}

/**
 * Keeps one tunnel up until stopped, whatever the transport: attempt, and when the attempt
 * ends, wait a jittered exponential delay and attempt again. The state is always one of
 * ConnectionState and is announced on every change.
 */
export class ReconnectLoop {
  private stateValue: ConnectionState = { state: 'connecting', attempt: 1 };
  private readonly stopped = new AbortController();
  private running: Promise<void> | undefined;
  private attemptNumber = 1;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly control: AttemptControl;

  constructor(private readonly options: ReconnectLoopOptions) {
    this.clock = options.clock ?? realClock;
    this.backoff = new Backoff(options.backoff, {
      clock: this.clock,
      ...(options.resetBackoffAfterMs !== undefined
        ? { resetAfterUpMs: options.resetBackoffAfterMs }
        : {}),
    });
    this.control = {
      signal: this.stopped.signal,
      up: () => {
        this.attemptNumber = 1;
        this.control.connected();
      },
      connected: () => {
        if (this.stateValue.state === 'connected' || this.stopped.signal.aborted) return;
        this.backoff.up();
        this.setState({ state: 'connected', since: new Date(this.clock.now()) });
      },
      resetBackoff: () => this.backoff.reset(),
    };
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Aborts when the loop is told to stop. */
  get signal(): AbortSignal {
    return this.stopped.signal;
  }

  /** Resolves once the loop ran its last turn (at once if it never started). */
  get ended(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * No more attempts: the attempt in progress is told through the signal; `drain` lets the
   * transport finish what is in flight before the state becomes `closed`.
   */
  async stop(drain: () => Promise<void>): Promise<void> {
    this.stopped.abort(new NatproxError('NATPROX_STOPPED', 'the client is stopping'));
    await drain();
    await this.ended;
    this.setState({ state: 'closed' });
  }

  private async run(): Promise<void> {
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      this.setState({ state: 'connecting', attempt: this.attemptNumber });
      let lastError: string;
      // A tunnel that was up and dropped: the proxy went away or the link broke.
      let kind: FailureKind = 'unreachable';
      const startedAt = this.clock.now();
      let spentMs = 0;
      try {
        lastError = await this.options.attempt(this.control);
        this.backoff.down();
      } catch (err) {
        lastError = errorMessage(err);
        kind = failureKind(err);
        this.attemptNumber += 1;
        spentMs = this.clock.now() - startedAt;
      }
      if (signal.aborted) return;
      // The delay counts from the start of a failed attempt: one that hung until its
      // timeout (SYNs dropped on a dead link) goes again at once, so a link that heals is
      // used within one dial, not a timeout plus a whole delay later. An attempt refused at
      // once waits its whole delay, so a proxy that refuses is never hammered.
      const plannedMs = this.backoff.next(kind);
      const delayMs = spentMs >= SPENT_DIALING_MS ? Math.max(0, plannedMs - spentMs) : plannedMs;
      this.setState({ state: 'reconnecting', attempt: this.attemptNumber, delayMs, lastError });
      try {
        await sleep(this.clock, delayMs, signal);
      } catch {
        return;
      }
    }
  }

  private setState(state: ConnectionState): void {
    this.stateValue = state;
    this.options.events.emit('state', state, this.options.tunnel);
  }
}
