/**
 * latency: one 10 KiB scrape at a time over one keep-alive connection; the latency natprox
 * adds (p50, p99) over scraping the target directly. Direct and natprox rounds alternate so
 * that noise from other work on the machine falls on both.
 */
import { startTarget } from '../lib/helpers.js';
import { summarize, type LoadJob, type Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { cpuMeter } from '../lib/proc-stats.js';
import { row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'latency';

/** Scrapes in one round. */
function perRoundOf(ctx: Context): number {
  return ctx.quick ? 500 : 2500;
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
        if (result.errors > 0) {
          errors += result.errors;
          ctx.fail(`latency (${via}): ${result.errors} errors, e.g. ${result.errorSamples[0]}`);
        }
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
