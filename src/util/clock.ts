/** A pending timer; a real one can be unref-ed so it does not keep the process alive. */
export interface ClockTimer {
  unref?(): unknown;
}

/**
 * Time, injectable: reconnect delays, poll lapses and scrape deadlines run on it, so tests
 * drive them with fake time instead of sleeping to prove that nothing happened.
 */
export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer | undefined): void;
}

/** The process's own clock. Its methods allocate nothing beyond the timer itself. */
export const realClock: Clock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
};

/**
 * Resolves after `ms` on `clock`; rejects with the signal's reason once it aborts.
 * `ref: false` lets the process exit while it waits.
 */
export function sleep(
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
  options: { ref?: boolean } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (options.ref === false) timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
