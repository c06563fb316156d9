/**
 * cadence: scrapes at Prometheus's pace instead of back to back. One 10 KiB scrape every
 * 100 ms on one keep-alive connection per route, for 60 s (quick: 10 s), the processes idle
 * in between, so every scrape wakes them (issue 19). Direct, the bare two-hop relay
 * (bench/floor/) and natprox take turns within each 100 ms: each route's scrapes are offset
 * by a third of the interval, so no route's scrape overlaps another's and a change in the
 * machine's load falls on all three. The goals are on natprox minus direct (p50, p99).
 */
import { startBareRelay } from '../lib/bare-relay.js';
import { startTarget } from '../lib/helpers.js';
import type { LoadJob, LoadResult, Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { sampleProcess } from '../lib/proc-stats.js';
import { row } from '../lib/report.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'cadence';
const INTERVAL_MS = 100;

/** Back-to-back scrapes through each route first, so the processes' hot paths are compiled. */
function warmUpOf(ctx: Context): number {
  return ctx.quick ? 150 : 2000;
}

function pacedJob(ctx: Context, route: Route, slot: number, slots: number): LoadJob {
  return {
    route,
    mode: 'paced',
    intervalMs: INTERVAL_MS,
    startDelayMs: (slot * INTERVAL_MS) / slots,
    durationMs: ctx.quick ? 10_000 : 60_000,
    // One scrape opens the keep-alive connection before the first measured one.
    warmup: 1,
    expectStatus: 200,
    timeoutMs: 10_000,
  };
}

export async function cadence(ctx: Context): Promise<ScenarioResult> {
  const name = 'cadence-1';
  const target = await startTarget();
  const proxy = await startProxy({ cpuProfDir: ctx.cpuProfDir });
  const client = startClient({
    proxyUrl: proxy.url,
    names: [name],
    allowPorts: [target.port],
    cpuProfDir: ctx.cpuProfDir,
  });
  const relay = await startBareRelay(target.port, [[name]]);
  try {
    await waitListed(proxy.port, [name], 15_000);
    const via = (port: number): Route => ({
      via: 'natprox',
      proxyPort: port,
      targetPort: target.port,
      names: [name],
      path: '/metrics',
    });
    const routes: Array<{ key: string; route: Route }> = [
      { key: 'direct', route: { via: 'direct', targetPort: target.port, path: '/metrics' } },
      { key: 'bare', route: via(relay.port) },
      { key: 'natprox', route: via(proxy.port) },
    ];
    const check = (what: string, result: LoadResult): void =>
      failOnErrors(ctx, `cadence (${what})`, result);
    for (const { key, route } of routes) {
      check(
        `${key} warm-up`,
        await ctx.driver.run({
          route,
          mode: 'closed',
          concurrency: 1,
          count: warmUpOf(ctx),
          expectStatus: 200,
          timeoutMs: 10_000,
        }),
      );
    }
    const cpuBefore = { proxy: cpuMs(proxy.pid), client: cpuMs(client.pid) };
    const results = await Promise.all(
      routes.map(({ route }, slot) => ctx.driver.run(pacedJob(ctx, route, slot, routes.length))),
    );
    const cpu = {
      proxy: cpuMs(proxy.pid) - cpuBefore.proxy,
      client: cpuMs(client.pid) - cpuBefore.client,
    };
    const [direct, bare, natprox] = results.map((result, i) => {
      check(routes[i]?.key ?? '?', result);
      return result.latency;
    });
    if (!direct || !bare || !natprox) throw new Error('cadence: a route was not measured');
    const spacing = `1 per ${INTERVAL_MS} ms, 10 KiB`;
    const added = (ms: number, base: number): string => `added ${(ms - base).toFixed(3)} ms`;
    const rows = [
      row({
        scenario: SCENARIO,
        metric: `p50, ${spacing}`,
        unit: 'ms',
        natprox: natprox.p50Ms,
        direct: direct.p50Ms,
        goal: { text: 'added <= 1.0 ms', value: natprox.p50Ms - direct.p50Ms, unit: 'ms', max: 1 },
      }),
      row({
        scenario: SCENARIO,
        metric: `p99, ${spacing}`,
        unit: 'ms',
        natprox: natprox.p99Ms,
        direct: direct.p99Ms,
        goal: { text: 'added <= 3 ms', value: natprox.p99Ms - direct.p99Ms, unit: 'ms', max: 3 },
      }),
      row({
        scenario: SCENARIO,
        metric: `p50, ${spacing}, bare relay`,
        unit: 'ms',
        natprox: bare.p50Ms,
        direct: direct.p50Ms,
        note: `${added(bare.p50Ms, direct.p50Ms)}; natprox column: the bare relay (bench/floor/)`,
      }),
      row({
        scenario: SCENARIO,
        metric: `p99, ${spacing}, bare relay`,
        unit: 'ms',
        natprox: bare.p99Ms,
        direct: direct.p99Ms,
        note: `${added(bare.p99Ms, direct.p99Ms)}; natprox column: the bare relay (bench/floor/)`,
      }),
    ];
    return {
      rows,
      details: { intervalMs: INTERVAL_MS, direct, bare, natprox, cpuMs: cpu },
    };
  } finally {
    await Promise.all([client.stop(), proxy.stop(6000), relay.stop(), target.stop()]);
  }
}

function cpuMs(pid: number): number {
  return sampleProcess(pid).cpuMs;
}
