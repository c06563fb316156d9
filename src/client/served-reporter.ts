import type { ClientEvents, ServeOutcome } from './client-events.js';

export type ReportServed = (outcome: ServeOutcome, status: number, reason?: string) => void;

/**
 * How one served scrape ended, reported once through `scrapeServed` (later calls are
 * ignored): every transport's executor reports the same way. The clock starts now.
 */
export function servedReporter(
  events: ClientEvents,
  scrape: { name: string; port: number; path: string },
  bytes: () => number,
  afterReport?: () => void,
): ReportServed {
  const startedAt = performance.now();
  let reported = false;
  return (outcome, status, reason) => {
    if (reported) return;
    reported = true;
    events.emit('scrapeServed', {
      ...scrape,
      outcome,
      status,
      durationMs: performance.now() - startedAt,
      bytes: bytes(),
      ...(reason ? { reason } : {}),
    });
    afterReport?.();
  };
}
