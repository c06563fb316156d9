/**
 * throughput: 64 scrapes of a 10 KiB body in flight at all times, spread over 100 client
 * names, for a fixed time; scrapes/s through natprox against the same driver scraping the
 * target directly. Measured two ways on one proxy:
 *   - 100 names on 4 real `natprox client` processes (25 names each; the proxy's
 *     max_names_per_client is raised to 25 for this), so client CPU is a real client's;
 *   - 100 tunnels, one name each, from the fleet driver (NatproxClient x 100 in one process);
 *   - one `natprox client` process with one name, all 64 scrapes on it (issue 19: a site with
 *     many targets has one client; goal >= 20% of direct).
 * Direct and the two natprox routes take turns in rounds (see throughputRounds).
 */
import { connectFleet, forkFleet, startTarget, type FleetProcess } from '../lib/helpers.js';
import {
  combineRuns,
  type LoadJob,
  type LoadResult,
  type MeasuredRoute,
  type Route,
} from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { takeTurns } from '../lib/turns.js';
import { row, type Row } from '../lib/report.js';
import type { Spawned } from '../lib/children.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'throughput';
const CONCURRENCY = 64;
/** The load's layout: 100 names over 4 client processes (the floor scenario uses it too). */
export const NAMES = 100;
export const CLIENT_PROCESSES = 4;

/** How long each route is measured, over all rounds. */
export function throughputMs(ctx: Context): number {
  return ctx.quick ? 1000 : 10_000;
}

/**
 * Measured rounds per route. The routes take turns round by round, so a change in the
 * shared machine's load during the scenario falls on the direct baseline and on natprox
 * alike instead of on whichever ran at that moment.
 */
export function throughputRounds(ctx: Context): number {
  return ctx.quick ? 1 : 4;
}

/** Scrapes before each round's measured ones, on the same connections. */
function warmupScrapes(ctx: Context): number {
  return CONCURRENCY * (ctx.quick ? 2 : 4);
}

/** One round: 64 scrapes in flight, after a warm-up that opens the round's connections. */
export function throughputJob(ctx: Context, route: Route): LoadJob {
  return {
    route,
    mode: 'closed',
    concurrency: CONCURRENCY,
    durationMs: throughputMs(ctx) / throughputRounds(ctx),
    warmup: warmupScrapes(ctx),
    expectStatus: 200,
    timeoutMs: 10_000,
    keepSamples: true,
  };
}

/** Scrapes that succeeded per second. */
export function scrapesPerSecond(result: LoadResult): number {
  return (result.ok * 1000) / result.elapsedMs;
}

export interface ThroughputMeasurement {
  /** All rounds as one result. */
  result: LoadResult;
  /** CPU milliseconds per process group over all rounds, warm-ups included. */
  cpuMs: Record<string, number>;
  /** Scrape rate of each round, to show how much the machine moved. */
  roundRates: number[];
  /** CPU microseconds per scrape of a group; warm-up scrapes count, as their CPU does. */
  cpuPerScrapeUs(group: string): number;
}

/**
 * Scrapes sent through each route before the first round, unmeasured (quick: a twentieth).
 * Processes that have just started run their first thousands of scrapes slowly (JIT, heap
 * sizing): without this, the first 2.5 s round measured 3,100-3,900 scrapes/s and the later
 * ones 5,900-6,800 through the same processes.
 */
function warmUpJob(ctx: Context, route: Route): LoadJob {
  return {
    ...throughputJob(ctx, route),
    durationMs: undefined,
    count: CONCURRENCY * (ctx.quick ? 5 : 100),
    warmup: 0,
    keepSamples: false,
  };
}

/**
 * Warms every route up, then runs them in turns for throughputRounds() rounds; `check`
 * sees every run.
 */
export async function measureThroughput(
  ctx: Context,
  routes: readonly MeasuredRoute[],
  check: (key: string, result: LoadResult) => void,
): Promise<Map<string, ThroughputMeasurement>> {
  for (const { key, route } of routes)
    check(`${key} warm-up`, await ctx.driver.run(warmUpJob(ctx, route)));
  const rounds = throughputRounds(ctx);
  const turns = await takeTurns(ctx, routes, rounds, (r) => throughputJob(ctx, r.route), check);
  const warmups = rounds * warmupScrapes(ctx);
  return new Map(
    [...turns].map(([key, { runs, cpuMs }]) => {
      const result = combineRuns(runs);
      const scrapes = Math.max(1, result.ok + warmups);
      return [
        key,
        {
          result,
          cpuMs,
          roundRates: runs.map(scrapesPerSecond),
          cpuPerScrapeUs: (group: string) => ((cpuMs[group] ?? 0) * 1000) / scrapes,
        },
      ];
    }),
  );
}

export async function throughput(ctx: Context): Promise<ScenarioResult> {
  const durationMs = throughputMs(ctx);
  const target = await startTarget();
  const proxy = await startProxy({
    cpuProfDir: ctx.cpuProfDir,
    config: { limits: { max_names_per_client: NAMES / CLIENT_PROCESSES } },
  });
  const clients: Spawned[] = [];
  let fleet: FleetProcess | undefined;
  try {
    const processNames = Array.from({ length: NAMES }, (_, i) => `tp-proc-${i}`);
    for (let p = 0; p < CLIENT_PROCESSES; p += 1) {
      clients.push(
        startClient({
          proxyUrl: proxy.url,
          names: processNames.filter((_, i) => i % CLIENT_PROCESSES === p),
          allowPorts: [target.port],
          cpuProfDir: ctx.cpuProfDir,
        }),
      );
    }
    const oneClient = startClient({
      proxyUrl: proxy.url,
      names: ['tp-one'],
      allowPorts: [target.port],
      cpuProfDir: ctx.cpuProfDir,
    });
    clients.push(oneClient);
    const fleetNames = Array.from({ length: NAMES }, (_, i) => `tp-tunnel-${i}`);
    fleet = await connectFleet(
      await forkFleet(),
      {
        proxyUrl: proxy.url,
        prefix: 'tp-tunnel-',
        from: 0,
        count: NAMES,
        allowPort: target.port,
        connectConcurrency: 20,
      },
      60_000,
    );
    if (fleet.failed > 0) ctx.fail(`throughput: ${fleet.failed} fleet tunnels did not connect`);
    await waitListed(proxy.port, [...processNames, ...fleetNames, 'tp-one'], 20_000);

    const natproxRoute = (names: string[]): Route => ({
      via: 'natprox',
      proxyPort: proxy.port,
      targetPort: target.port,
      names,
      path: '/metrics',
    });
    const variants = [
      {
        label: `${CLIENT_PROCESSES} client procs x ${NAMES / CLIENT_PROCESSES} names`,
        goalPercent: 30,
        key: 'processes',
        route: natproxRoute(processNames),
        cpu: {
          proxy: [proxy.pid],
          client: clients.filter((c) => c !== oneClient).map((c) => c.pid),
        },
      },
      {
        label: `${NAMES} tunnels (fleet driver)`,
        key: 'tunnels',
        route: natproxRoute(fleetNames),
        goalPercent: 30,
        cpu: { proxy: [proxy.pid], client: [fleet.pid] },
      },
      {
        label: 'one client process, one name',
        key: 'one',
        route: natproxRoute(['tp-one']),
        goalPercent: 20,
        cpu: { proxy: [proxy.pid], client: [oneClient.pid] },
      },
    ];
    const measured = await measureThroughput(
      ctx,
      [
        {
          key: 'direct',
          route: { via: 'direct', targetPort: target.port, path: '/metrics' },
          cpu: { target: [target.pid] },
        },
        ...variants,
      ],
      (key, result) => failOnErrors(ctx, `throughput (${key})`, result),
    );
    const direct = measured.get('direct');
    if (!direct) throw new Error('throughput: the direct route was not measured');
    const directRate = scrapesPerSecond(direct.result);

    const rows: Row[] = [];
    const details: Record<string, unknown> = {
      durationMs,
      rounds: throughputRounds(ctx),
      direct: { result: direct.result, roundRates: direct.roundRates },
    };
    for (const variant of variants) {
      const natprox = measured.get(variant.key);
      if (!natprox) continue;
      const natRate = scrapesPerSecond(natprox.result);
      rows.push(
        row({
          scenario: SCENARIO,
          metric: `scrapes/s, 64 conc., ${variant.label}`,
          unit: '/s',
          natprox: natRate,
          direct: directRate,
          goal: {
            text: `>= ${variant.goalPercent}% of direct`,
            value: (natRate / directRate) * 100,
            unit: '%',
            min: variant.goalPercent,
          },
        }),
        row({
          scenario: SCENARIO,
          metric: `p99, ${variant.label}`,
          unit: 'ms',
          natprox: natprox.result.latency.p99Ms,
          direct: direct.result.latency.p99Ms,
        }),
        row({
          scenario: SCENARIO,
          metric: `CPU per scrape: proxy (${variant.key})`,
          unit: 'µs',
          natprox: natprox.cpuPerScrapeUs('proxy'),
        }),
        row({
          scenario: SCENARIO,
          metric: `CPU per scrape: client (${variant.key})`,
          unit: 'µs',
          natprox: natprox.cpuPerScrapeUs('client'),
        }),
      );
      details[variant.key] = {
        result: natprox.result,
        roundRates: natprox.roundRates,
        proxyCpuMs: natprox.cpuMs.proxy,
        clientCpuMs: natprox.cpuMs.client,
      };
    }
    rows.push(
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: target',
        unit: 'µs',
        natprox: null,
        direct: direct.cpuPerScrapeUs('target'),
      }),
    );
    return { rows, details };
  } finally {
    await Promise.all([
      ...clients.map((c) => c.stop()),
      fleet?.close(),
      proxy.stop(6000),
      target.stop(),
    ]);
  }
}
