export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** Fraction of each delay that is randomised, so a fleet does not reconnect in lockstep. */
  jitter: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  multiplier: 2,
  jitter: 0.3,
};

/** Exponential, capped, jittered reconnect delays; reset once a connection has stayed up. */
export class Backoff {
  private nextBaseMs: number;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {
    this.nextBaseMs = options.initialMs;
  }

  /** The delay before the next attempt; each call grows the one after it. */
  next(): number {
    const base = this.nextBaseMs;
    this.nextBaseMs = Math.min(base * this.options.multiplier, this.options.maxMs);
    const random = this.options.random ?? Math.random;
    const spread = base * this.options.jitter;
    return Math.max(0, Math.round(base - spread + 2 * spread * random()));
  }

  reset(): void {
    this.nextBaseMs = this.options.initialMs;
  }
}
