/**
 * latency: one 10 KiB scrape at a time over one keep-alive connection; the latency natprox
 * adds (p50, p99) over scraping the target directly. Direct and natprox rounds alternate so
 * that noise from other work on the machine falls on both.
 */
import { startTarget } from '../lib/helpers.js';
import { summarize, type LatencySummary, type LoadJob, type Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { cpuMeter } from '../lib/proc-stats.js';
import { row } from '../lib/report.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'latency';

/** Scrapes in one round. */
function perRoundOf(ctx: Context): number {
  return ctx.quick ? 500 : 2500;
}

/**
 * Scrapes sent through a fresh route before the measured rounds. A process that has just
 * started is slower until V8 has compiled its hot paths and sized its heap: through natprox
 * the p99 of consecutive 2,500-scrape rounds after a start measured 4.4-5.0, 3.0-3.1,
 * 1.3-2.3 and 1.0-1.3 ms. The goals are about a proxy that has been running; the warm-up
 * is reported on its own rows.
 */
function warmUpOf(ctx: Context): number {
  return ctx.quick ? 1000 : 7500;
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
  try {
    await waitListed(proxy.port, ['latency-1'], 15_000);
    const routes: Record<'direct' | 'natprox', Route> = {
      direct: { via: 'direct', targetPort: target.port, path: '/metrics' },
      natprox: {
        via: 'natprox',
        proxyPort: proxy.port,
        targetPort: target.port,
        names: ['latency-1'],
        path: '/metrics',
      },
    };
    const job = (route: Route): LoadJob => sequentialJob(ctx, route);
    const warmUp = async (via: 'direct' | 'natprox'): Promise<LatencySummary> => {
      const result = await ctx.driver.run(warmUpJob(ctx, routes[via]));
      failOnErrors(ctx, `latency (${via} warm-up)`, result);
      return summarize(result.samples ?? []);
    };
    const cold = { direct: await warmUp('direct'), natprox: await warmUp('natprox') };
    const samples = { direct: [] as number[], natprox: [] as number[] };
    const cpu = { proxy: 0, client: 0, targetNatprox: 0, targetDirect: 0 };
    let errors = 0;
    for (let round = 0; round < rounds; round += 1) {
      for (const via of ['direct', 'natprox'] as const) {
        const meters = {
          proxy: cpuMeter([proxy.pid]),
          client: cpuMeter([client.pid]),
          target: cpuMeter([target.pid]),
        };
        const result = await ctx.driver.run(job(routes[via]));
        if (via === 'natprox') {
          cpu.proxy += meters.proxy.elapsedMs();
          cpu.client += meters.client.elapsedMs();
          cpu.targetNatprox += meters.target.elapsedMs();
        } else {
          cpu.targetDirect += meters.target.elapsedMs();
        }
        samples[via].push(...(result.samples ?? []));
        errors += result.errors;
        failOnErrors(ctx, `latency (${via})`, result);
      }
    }
    const direct = summarize(samples.direct);
    const natprox = summarize(samples.natprox);
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
          text: 'added <= 0.3 ms',
          value: natprox.p50Ms - direct.p50Ms,
          unit: 'ms',
          max: 0.3,
        },
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
      details: { direct, natprox, errors, cpuMs: cpu, rounds, perRound: perRoundOf(ctx) },
    };
  } finally {
    await Promise.all([client.stop(), proxy.stop(6000), target.stop()]);
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
