/**
 * latency: one 10 KiB scrape at a time over one keep-alive connection; the latency natprox
 * adds (p50, p99) over scraping the target directly. Direct, the bare two-hop relay
 * (bench/floor/) and natprox rounds alternate so that noise from other work on the machine
 * falls on all of them; natprox's added p50 is held against the bare relay's from the same
 * run (issue 19: what two Node hops cost here is the floor, not a fixed 0.3 ms).
 */
import { startTarget } from '../lib/helpers.js';
import {
  combineRuns,
  summarize,
  type LatencySummary,
  type LoadJob,
  type LoadResult,
  type MeasuredRoute,
  type Route,
} from '../lib/load-types.js';
import { startBareRelay } from '../lib/bare-relay.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { takeTurns } from '../lib/turns.js';
import { row } from '../lib/report.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'latency';

/** Scrapes in one round. */
function perRoundOf(ctx: Context): number {
  return ctx.quick ? 300 : 2500;
}

/**
 * Scrapes sent through a fresh route before the measured rounds. A process that has just
 * started is slower until V8 has compiled its hot paths and sized its heap: through natprox
 * the p99 of consecutive 2,500-scrape rounds after a start measured 4.4-5.0, 3.0-3.1,
 * 1.3-2.3 and 1.0-1.3 ms. The goals are about a proxy that has been running; the warm-up
 * is reported on its own rows.
 */
function warmUpOf(ctx: Context): number {
  return ctx.quick ? 500 : 7500;
}

/** The sequential job, sent once before measuring: its samples are the cold start. */
export function warmUpJob(ctx: Context, route: Route): LoadJob {
  return { ...sequentialJob(ctx, route), count: warmUpOf(ctx), warmup: 0 };
}

/** One round: scrapes one at a time over one keep-alive connection, every latency kept. */
export function sequentialJob(ctx: Context, route: Route): LoadJob {
  return {
    route,
    mode: 'closed',
    concurrency: 1,
    count: perRoundOf(ctx),
    warmup: 100,
    expectStatus: 200,
    timeoutMs: 10_000,
    keepSamples: true,
  };
}

export interface SequentialMeasurement {
  /** The warm-up's latencies: the first scrapes after a start. */
  cold: LatencySummary;
  /** All measured rounds. */
  latency: LatencySummary;
  /** CPU milliseconds per process group over the measured rounds. */
  cpuMs: Record<string, number>;
  errors: number;
}

/**
 * Warms every route up (warmUpJob), then runs them in turns for `rounds` rounds of
 * sequentialJob, so that noise from other work on the machine falls on all of them;
 * `check` sees every run.
 */
export async function measureSequential(
  ctx: Context,
  routes: readonly MeasuredRoute[],
  rounds: number,
  check: (what: string, result: LoadResult) => void,
): Promise<Map<string, SequentialMeasurement>> {
  const cold = new Map<string, LatencySummary>();
  for (const { key, route } of routes) {
    const result = await ctx.driver.run(warmUpJob(ctx, route));
    check(`${key} warm-up`, result);
    cold.set(key, summarize(result.samples ?? []));
  }
  const turns = await takeTurns(ctx, routes, rounds, (r) => sequentialJob(ctx, r.route), check);
  return new Map(
    [...turns].map(([key, { runs, cpuMs }]) => {
      const all = combineRuns(runs);
      return [
        key,
        { cold: cold.get(key) ?? summarize([]), latency: all.latency, cpuMs, errors: all.errors },
      ];
    }),
  );
}

export async function latency(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 2 : 4;
  const target = await startTarget();
  const proxy = await startProxy({ cpuProfDir: ctx.cpuProfDir });
  const client = startClient({
    proxyUrl: proxy.url,
    names: ['latency-1'],
    allowPorts: [target.port],
    cpuProfDir: ctx.cpuProfDir,
  });
  const relay = await startBareRelay(target.port, [['latency-1']]);
  try {
    await waitListed(proxy.port, ['latency-1'], 15_000);
    const measured = await measureSequential(
      ctx,
      [
        {
          key: 'direct',
          route: { via: 'direct', targetPort: target.port, path: '/metrics' },
          cpu: { target: [target.pid] },
        },
        {
          key: 'natprox',
          route: {
            via: 'natprox',
            proxyPort: proxy.port,
            targetPort: target.port,
            names: ['latency-1'],
            path: '/metrics',
          },
          cpu: { proxy: [proxy.pid], client: [client.pid], target: [target.pid] },
        },
        {
          key: 'bare',
          route: {
            via: 'natprox',
            proxyPort: relay.port,
            targetPort: target.port,
            names: ['latency-1'],
            path: '/metrics',
          },
          cpu: {},
        },
      ],
      rounds,
      (what, result) => failOnErrors(ctx, `latency (${what})`, result),
    );
    const directRoute = measured.get('direct');
    const natproxRoute = measured.get('natprox');
    const bareRoute = measured.get('bare');
    if (!directRoute || !natproxRoute || !bareRoute)
      throw new Error('latency: a route was not measured');
    const direct = directRoute.latency;
    const natprox = natproxRoute.latency;
    const bare = bareRoute.latency;
    const bareAdded = bare.p50Ms - direct.p50Ms;
    const natproxAdded = natprox.p50Ms - direct.p50Ms;
    const cold = { direct: directRoute.cold, natprox: natproxRoute.cold };
    const cpu = {
      proxy: natproxRoute.cpuMs.proxy ?? 0,
      client: natproxRoute.cpuMs.client ?? 0,
      targetNatprox: natproxRoute.cpuMs.target ?? 0,
      targetDirect: directRoute.cpuMs.target ?? 0,
    };
    const errors = directRoute.errors + natproxRoute.errors;
    const scrapes = natprox.count;
    const usPerScrape = (ms: number): number => (ms * 1000) / scrapes;
    const rows = [
      row({
        scenario: SCENARIO,
        metric: 'p50, 10 KiB sequential',
        unit: 'ms',
        natprox: natprox.p50Ms,
        direct: direct.p50Ms,
        goal: {
          text: "added <= 1.15x the bare relay's",
          value: natproxAdded / bareAdded,
          unit: 'x',
          max: 1.15,
        },
        note: `added ${natproxAdded.toFixed(3)} ms; the bare two-hop relay's ${bareAdded.toFixed(3)} ms (p50 ${bare.p50Ms.toFixed(3)} ms), same run`,
      }),
      row({
        scenario: SCENARIO,
        metric: 'p50, 10 KiB sequential, bare relay',
        unit: 'ms',
        natprox: bare.p50Ms,
        direct: direct.p50Ms,
        note: 'natprox column: the bare relay (bench/floor/), the baseline of the p50 goal',
      }),
      row({
        scenario: SCENARIO,
        metric: 'p99, 10 KiB sequential',
        unit: 'ms',
        natprox: natprox.p99Ms,
        direct: direct.p99Ms,
        goal: { text: 'added <= 2 ms', value: natprox.p99Ms - direct.p99Ms, unit: 'ms', max: 2 },
      }),
      ...coldRows(cold, warmUpOf(ctx)),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: proxy',
        unit: 'µs',
        natprox: usPerScrape(cpu.proxy),
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: client',
        unit: 'µs',
        natprox: usPerScrape(cpu.client),
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: target',
        unit: 'µs',
        natprox: usPerScrape(cpu.targetNatprox),
        direct: (cpu.targetDirect * 1000) / Math.max(1, direct.count),
      }),
    ];
    return {
      rows,
      details: { direct, natprox, bare, errors, cpuMs: cpu, rounds, perRound: perRoundOf(ctx) },
    };
  } finally {
    await Promise.all([client.stop(), proxy.stop(6000), relay.stop(), target.stop()]);
  }
}

/** The warm-up's own latencies: what the first scrapes after a start see. No goal. */
function coldRows(cold: { direct: LatencySummary; natprox: LatencySummary }, count: number) {
  const first = `first ${count.toLocaleString('en-US')} scrapes after start`;
  const note = 'the warm-up before the measured rounds; not what the goals are about';
  return [
    row({
      scenario: SCENARIO,
      metric: `p50, ${first}`,
      unit: 'ms',
      natprox: cold.natprox.p50Ms,
      direct: cold.direct.p50Ms,
      note,
    }),
    row({
      scenario: SCENARIO,
      metric: `p99, ${first}`,
      unit: 'ms',
      natprox: cold.natprox.p99Ms,
      direct: cold.direct.p99Ms,
      note,
    }),
  ];
}
