import type { BackoffOptions } from '../../src/client/backoff.js';
import type { Clock, ClockTimer } from '../../src/util/clock.js';

interface FakeTimer extends ClockTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A Clock whose time moves only when the test says so: `advance(ms)` runs the timers due
 * in that span in order, letting promises settle after each, so what a timer starts runs
 * before the next one fires.
 */
export class FakeClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly timers = new Set<FakeTimer>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const timer: FakeTimer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    if (timer) this.timers.delete(timer as FakeTimer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** How long until the next timer fires; undefined when none is set. */
  get nextDelay(): number | undefined {
    const next = this.next();
    return next ? next.at - this.time : undefined;
  }

  /** Moves time on by `ms`, firing each timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    for (let fired = 0; fired < 100_000; fired += 1) {
      const next = this.next();
      if (!next || next.at > until) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = until;
    await settle();
  }

  private next(): FakeTimer | undefined {
    let first: FakeTimer | undefined;
    for (const timer of this.timers) {
      if (!first || timer.at < first.at || (timer.at === first.at && timer.seq < first.seq)) {
        first = timer;
      }
    }
    return first;
  }
}

/** Lets pending promise callbacks and immediates run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Reconnect delays that fake time can count on: 20, 40, 80, 160 ms. No jitter: random() = 0.5
 * puts every delay exactly on its base.
 */
export const EXACT_BACKOFF: BackoffOptions = {
  initialMs: 20,
  maxMs: 160,
  multiplier: 2,
  jitter: 0.3,
  random: () => 0.5,
};
