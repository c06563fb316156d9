import { NatproxError } from '../errors.js';
import { realClock, type Clock } from '../util/clock.js';

export interface BackoffOptions {
  initialMs: number;
  /** Ceiling after a refusal the proxy answered (bad token, names not granted). */
  maxMs: number;
  /**
   * Ceiling while the proxy cannot be reached or is restarting (refused, reset, timed out,
   * 5xx): waiting longer spares nobody, and a client must be back within seconds of the
   * proxy accepting again, however long it was away. Defaults to maxMs.
   */
  unreachableMaxMs?: number;
  multiplier: number;
  /** Fraction of each delay that is randomised, so a fleet does not reconnect in lockstep. */
  jitter: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  // With 30% jitter the delays at this ceiling spread over 2.1-3.9 s: back within 4 s of
  // the proxy listening, and 10,000 clients arrive spread over 1.8 s, not in one burst.
  unreachableMaxMs: 3000,
  multiplier: 2,
  jitter: 0.3,
};

/** Why the last attempt failed, which decides the ceiling of the next delay. */
export type FailureKind = 'unreachable' | 'refused';

/**
 * A refusal the proxy answered with a client error (401, 403, 400, …) will not go away by
 * retrying soon; anything else (no answer, reset, 5xx while it restarts) may any moment.
 */
export function failureKind(err: unknown): FailureKind {
  const status = err instanceof NatproxError ? err.httpStatus : undefined;
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429
    ? 'refused'
    : 'unreachable';
}

/** What a Backoff measures the time a tunnel stayed up with. */
export interface BackoffTiming {
  clock?: Clock;
  /** A tunnel that stayed up this long starts the delays over when it drops; never if unset. */
  resetAfterUpMs?: number;
}

/** Exponential, capped, jittered reconnect delays; reset once a connection has stayed up. */
export class Backoff {
  private nextBaseMs: number;
  private upSince: number | undefined = undefined;
  private readonly clock: Clock;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly timing: BackoffTiming = {},
  ) {
    this.nextBaseMs = options.initialMs;
    this.clock = timing.clock ?? realClock;
  }

  /** The delay before the next attempt; each call grows the one after it. */
  next(kind: FailureKind = 'refused'): number {
    const { maxMs, unreachableMaxMs = maxMs } = this.options;
    const base = Math.min(this.nextBaseMs, kind === 'unreachable' ? unreachableMaxMs : maxMs);
    this.nextBaseMs = Math.min(this.nextBaseMs * this.options.multiplier, maxMs);
    const random = this.options.random ?? Math.random;
    const spread = base * this.options.jitter;
    return Math.max(0, Math.round(base - spread + 2 * spread * random()));
  }

  reset(): void {
    this.nextBaseMs = this.options.initialMs;
  }

  /** The tunnel is up from now. */
  up(): void {
    this.upSince = this.clock.now();
  }

  /** The tunnel that was up dropped: one that stayed up `resetAfterUpMs` starts over. */
  down(): void {
    const since = this.upSince;
    this.upSince = undefined;
    const after = this.timing.resetAfterUpMs;
    if (since !== undefined && after !== undefined && this.clock.now() - since >= after) {
      this.reset();
    }
  }
}
