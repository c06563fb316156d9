/** Prometheus announces its scrape timeout in this request header (seconds, fractional). */
export const SCRAPE_TIMEOUT_HEADER = 'x-prometheus-scrape-timeout-seconds';

/**
 * The deadline of one scrape: the scraper's announced timeout, capped by the configured
 * maximum, or the default when the header is absent or unreadable.
 */
export function scrapeDeadlineMs(
  headerValue: string | string[] | undefined,
  defaultMs: number,
  maxMs: number,
): number {
  const text = Array.isArray(headerValue) ? headerValue[0] : headerValue;
  const seconds = text === undefined ? NaN : Number(text);
  const requestedMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : defaultMs;
  return Math.min(requestedMs, maxMs);
}
