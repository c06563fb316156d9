import { parseAuthorization } from '../auth/credentials.js';
import type { ClientSession } from './client-session.js';

/** The limits a new stream is checked against (from ScrapePolicy). */
export interface StreamLimits {
  maxStreamsPerClient: number;
  /** Per scraper credential and client; undefined when the proxy has no scrapers: to tell apart. */
  maxStreamsPerScraper: number | undefined;
}

/** Which limit refused a stream: its name in the config file. */
export type StreamLimitName = 'max_streams_per_client' | 'max_streams_per_scraper';

/**
 * Streams in flight, per client session, per scraper credential on each client session, and
 * in total: scrapes and CONNECT tunnels share the per-client limit, so one busy scraper
 * cannot starve a client's other scrapes forever; and one scraper credential cannot take
 * all of a client's slots, so a scraper that stops reading (its scrapes then hold their
 * slots until their deadlines) leaves room for the others.
 */
export class StreamCounter {
  private readonly perSession = new WeakMap<ClientSession, number>();
  private readonly perScraper = new WeakMap<ClientSession, Map<string, number>>();
  private total = 0;

  get active(): number {
    return this.total;
  }

  /**
   * Takes a slot for a stream of `scraper` (its Proxy-Authorization, already checked) to
   * `session`, or names the limit that is reached. The release is idempotent.
   */
  acquire(
    session: ClientSession,
    limits: StreamLimits,
    scraper: string | undefined,
  ): (() => void) | StreamLimitName {
    const current = this.perSession.get(session) ?? 0;
    if (current >= limits.maxStreamsPerClient) return 'max_streams_per_client';
    const perScraper = limits.maxStreamsPerScraper;
    let scrapers: Map<string, number> | undefined;
    let key = '';
    if (perScraper !== undefined) {
      key = scraperKey(scraper);
      scrapers = this.perScraper.get(session);
      if (!scrapers) {
        scrapers = new Map();
        this.perScraper.set(session, scrapers);
      }
      const held = scrapers.get(key) ?? 0;
      if (held >= perScraper) return 'max_streams_per_scraper';
      scrapers.set(key, held + 1);
    }
    this.perSession.set(session, current + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      this.perSession.set(session, (this.perSession.get(session) ?? 1) - 1);
      if (scrapers) {
        const left = (scrapers.get(key) ?? 1) - 1;
        if (left > 0) scrapers.set(key, left);
        else scrapers.delete(key);
      }
    };
  }
}

/**
 * Which credential a checked Proxy-Authorization is: the user name, or the bearer token.
 * Not the header as sent, which one credential can spell many ways ("basic", padding).
 */
function scraperKey(header: string | undefined): string {
  const presented = parseAuthorization(header);
  if (!presented) return '';
  return presented.kind === 'basic' ? `basic:${presented.username}` : `bearer:${presented.token}`;
}

/** The reason a scraper gets with its 429 when `limit` refused its stream to `name`. */
export function busyReason(name: string, limits: StreamLimits, limit: StreamLimitName): string {
  return limit === 'max_streams_per_client'
    ? `client for "${name}" already has ${limits.maxStreamsPerClient} streams in flight, its limit (max_streams_per_client)`
    : `these scraper credentials already have ${limits.maxStreamsPerScraper} streams in flight to the client for "${name}", their limit (max_streams_per_scraper); other scrapers still get through`;
}
