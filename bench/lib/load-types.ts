/** Jobs the load driver runs and what it reports back (plain JSON over IPC). */

/** Where requests go: through natprox (absolute-form) or straight to the target. */
export type Route =
  | {
      via: 'natprox';
      proxyPort: number;
      targetPort: number;
      /** Request i goes to names[i % names.length]. */
      names: string[];
      path: string;
      /** Extra request headers, e.g. Proxy-Authorization. */
      headers?: Record<string, string>;
    }
  | { via: 'direct'; targetPort: number; path: string };

/** A route a scenario measures, and the processes whose CPU time counts while it runs. */
export interface MeasuredRoute {
  key: string;
  route: Route;
  /** Process groups by name (e.g. proxy, client) and their pids. */
  cpu: Record<string, readonly number[]>;
}

export interface LoadJob {
  route: Route;
  /** closed: `concurrency` workers, each sends the next request when its last one ends. */
  /** open: requests started at `ratePerSec`, whatever is in flight. */
  /** paced: one request every `intervalMs` (after `startDelayMs`), the process idle between. */
  mode: 'closed' | 'open' | 'paced';
  concurrency?: number;
  ratePerSec?: number;
  /** Paced mode: the spacing of requests, and when the first one goes after the warm-up. */
  intervalMs?: number;
  startDelayMs?: number;
  /** Stop after this many requests, or after durationMs, whichever comes first. */
  count?: number;
  durationMs?: number;
  /** Requests sent (and not measured) before the measured ones, on the same connections. */
  warmup?: number;
  /** Keep-alive connections in the pool (default: concurrency, or 256 for open mode). */
  maxSockets?: number;
  expectStatus: number;
  /** Per-request bound. */
  timeoutMs: number;
  /** Open mode: requests due while this many are in flight are skipped (counted, not sent). */
  maxInFlight?: number;
  /** Send every latency back (for merging rounds), not just the summary. */
  keepSamples?: boolean;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LoadResult {
  sent: number;
  ok: number;
  errors: number;
  /** A few error descriptions (status or message), for the report. */
  errorSamples: string[];
  bytes: number;
  elapsedMs: number;
  latency: LatencySummary;
  /** Open mode: how far behind schedule the sender fell at worst. */
  maxLagMs: number;
  /** Open mode: requests not sent because maxInFlight were already in flight (overload). */
  skipped: number;
  samples?: number[];
}

export function summarize(samples: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number =>
    sorted.length === 0
      ? NaN
      : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    meanMs: sorted.length === 0 ? NaN : sum / sorted.length,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: sorted.length === 0 ? NaN : (sorted[sorted.length - 1] ?? NaN),
  };
}

/**
 * Runs of one job taken as one: counts, bytes and time add up (so ok / elapsedMs is the rate
 * over all of them), latencies are merged from the runs' samples (run them with keepSamples);
 * the merged result keeps no samples.
 */
export function combineRuns(runs: readonly LoadResult[]): LoadResult {
  const samples: number[] = [];
  for (const run of runs) for (const sample of run.samples ?? []) samples.push(sample);
  const sum = (field: 'sent' | 'ok' | 'errors' | 'bytes' | 'elapsedMs' | 'skipped'): number =>
    runs.reduce((total, run) => total + run[field], 0);
  return {
    sent: sum('sent'),
    ok: sum('ok'),
    errors: sum('errors'),
    errorSamples: runs.flatMap((run) => run.errorSamples).slice(0, 10),
    bytes: sum('bytes'),
    elapsedMs: sum('elapsedMs'),
    latency: summarize(samples),
    maxLagMs: Math.max(0, ...runs.map((run) => run.maxLagMs)),
    skipped: sum('skipped'),
  };
}
