import { DepartedNames } from '../departed-names.js';
import type { ProxyEvents, ScrapeFinished } from '../proxy-events.js';

/** Length of the "recent" window on the status page, and the size of its buckets. */
export const WINDOW_MS = 5 * 60_000;
const BUCKET_MS = 10_000;
const BUCKETS = WINDOW_MS / BUCKET_MS;
/** How many of the latest failed scrapes the status page keeps. */
export const MAX_RECENT_ERRORS = 20;

export interface LastScrape {
  at: Date;
  path: string;
  outcome: ScrapeFinished['outcome'];
  status: number;
  durationMs: number;
}

export interface RecentError extends LastScrape {
  name: string;
  port: number;
  reason: string;
  /** How many times this error (same outcome and reason) happened; `at` is the latest. */
  count: number;
}

interface NameActivity {
  last: LastScrape | undefined;
  bytes: number;
  /** Per 10 s bucket: its start (ms since epoch), ok and failed scrapes. */
  buckets: Array<{ start: number; ok: number; failed: number }>;
}

/**
 * What the status page shows about each connected client: its last scrape, scrapes in the
 * last five minutes and bytes relayed, plus the latest errors. Kept per name, so a client
 * that reconnects keeps its counts; a name no client serves is forgotten once its window
 * has passed. Bounded memory: a fixed number of buckets per name of the last five minutes,
 * and a fixed-size error list.
 */
export class ClientActivity {
  private readonly names = new Map<string, NameActivity>();
  /** Names no client serves: forgotten once their window has passed. */
  private readonly departed: DepartedNames<undefined>;
  private readonly errors: RecentError[] = [];

  /** `served(name)`: whether a live client serves the name now. */
  constructor(
    events: ProxyEvents,
    served: (name: string) => boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.departed = new DepartedNames(
      { retentionMs: WINDOW_MS, maxNames: Number.POSITIVE_INFINITY, now },
      (name) => this.names.delete(name),
    );
    events.on('tunnelConnected', (session) => {
      this.departed.prune();
      for (const name of session.registration.names) {
        this.departed.delete(name);
        if (!this.names.has(name)) this.names.set(name, emptyActivity());
      }
    });
    events.on('tunnelDisconnected', (session) => {
      for (const name of session.registration.names) {
        if (this.names.has(name) && !served(name)) this.departed.add(name, undefined);
      }
    });
    events.on('scrapeFinished', (info) => this.record(info));
    events.on('httpsConnectFinished', (info) => this.record(info));
  }

  /** The latest scrape of any of these names. */
  last(names: readonly string[]): LastScrape | undefined {
    let latest: LastScrape | undefined;
    for (const name of names) {
      const last = this.names.get(name)?.last;
      if (last && (!latest || last.at > latest.at)) latest = last;
    }
    return latest;
  }

  bytes(names: readonly string[]): number {
    return names.reduce((sum, name) => sum + (this.names.get(name)?.bytes ?? 0), 0);
  }

  /** Scrapes of these names that ended ok and otherwise in the last five minutes. */
  recent(names: readonly string[]): { ok: number; failed: number } {
    const since = this.now() - WINDOW_MS;
    let ok = 0;
    let failed = 0;
    for (const name of names) {
      for (const bucket of this.names.get(name)?.buckets ?? []) {
        if (bucket.start + BUCKET_MS <= since) continue;
        ok += bucket.ok;
        failed += bucket.failed;
      }
    }
    return { ok, failed };
  }

  /** The latest failed scrapes, newest first. */
  recentErrors(): RecentError[] {
    return [...this.errors].reverse();
  }

  private record(info: ScrapeFinished): void {
    const at = this.now();
    const failed = info.outcome !== 'ok';
    const scrape: LastScrape = {
      at: new Date(at),
      path: info.path,
      outcome: info.outcome,
      status: info.status,
      durationMs: info.durationMs,
    };
    if (failed) recordError(this.errors, scrape, info);
    // Only scrapes that reached a client: unknown names must not take memory.
    const activity = info.sessionId ? this.names.get(info.name) : undefined;
    if (!activity) return;
    activity.last = scrape;
    activity.bytes += info.bytes;
    const start = at - (at % BUCKET_MS);
    let bucket = activity.buckets.at(-1);
    if (!bucket || bucket.start !== start) {
      bucket = { start, ok: 0, failed: 0 };
      activity.buckets.push(bucket);
      if (activity.buckets.length > BUCKETS) activity.buckets.shift();
    }
    if (failed) bucket.failed += 1;
    else bucket.ok += 1;
  }
}

/**
 * A repeat of an error already in the list (same outcome and reason) replaces it, newest,
 * with its count: a flood of one kind, such as requests without scraper credentials, takes
 * one entry and cannot push the other errors out.
 */
function recordError(errors: RecentError[], scrape: LastScrape, info: ScrapeFinished): void {
  const reason = info.reason ?? info.outcome;
  const index = errors.findIndex((e) => e.outcome === info.outcome && e.reason === reason);
  const count = index >= 0 ? (errors[index]?.count ?? 0) + 1 : 1;
  if (index >= 0) errors.splice(index, 1);
  errors.push({ ...scrape, name: info.name, port: info.port, reason, count });
  if (errors.length > MAX_RECENT_ERRORS) errors.shift();
}

function emptyActivity(): NameActivity {
  return { last: undefined, bytes: 0, buckets: [] };
}
