/**
 * throughput: 64 scrapes of a 10 KiB body in flight at all times, spread over 100 client
 * names, for a fixed time; scrapes/s through natprox against the same driver scraping the
 * target directly. Measured two ways on one proxy:
 *   - 100 names on 4 real `natprox client` processes (25 names each; the proxy's
 *     max_names_per_client is raised to 25 for this), so client CPU is a real client's;
 *   - 100 tunnels, one name each, from the fleet driver (NatproxClient x 100 in one process).
 */
import { connectFleet, forkFleet, startTarget, type FleetProcess } from '../lib/helpers.js';
import type { LoadJob, LoadResult, Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { cpuMeter } from '../lib/proc-stats.js';
import { row, type Row } from '../lib/report.js';
import type { Spawned } from '../lib/children.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'throughput';
const CONCURRENCY = 64;
/** The load's layout: 100 names over 4 client processes (the floor scenario uses it too). */
export const NAMES = 100;
export const CLIENT_PROCESSES = 4;

/** How long each measurement runs. */
export function throughputMs(ctx: Context): number {
  return ctx.quick ? 2500 : 10_000;
}

/** 64 scrapes in flight for throughputMs(), after a warm-up on the same connections. */
export function throughputJob(ctx: Context, route: Route): LoadJob {
  return {
    route,
    mode: 'closed',
    concurrency: CONCURRENCY,
    durationMs: throughputMs(ctx),
    warmup: CONCURRENCY * (ctx.quick ? 2 : 10),
    expectStatus: 200,
    timeoutMs: 10_000,
  };
}

/** Scrapes that succeeded per second. */
export function scrapesPerSecond(result: LoadResult): number {
  return (result.ok * 1000) / result.elapsedMs;
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
    await waitListed(proxy.port, [...processNames, ...fleetNames], 20_000);

    const job = (route: Route): LoadJob => throughputJob(ctx, route);
    const natproxRoute = (names: string[]): Route => ({
      via: 'natprox',
      proxyPort: proxy.port,
      targetPort: target.port,
      names,
      path: '/metrics',
    });
    const check = (what: string, result: LoadResult): void =>
      failOnErrors(ctx, `throughput (${what})`, result);
    const rate = scrapesPerSecond;

    const targetMeter = cpuMeter([target.pid]);
    const direct = await ctx.driver.run(
      job({ via: 'direct', targetPort: target.port, path: '/metrics' }),
    );
    const targetDirectMs = targetMeter.elapsedMs();
    check('direct', direct);

    const rows: Row[] = [];
    const details: Record<string, unknown> = { durationMs, direct };
    const variants = [
      {
        label: `${CLIENT_PROCESSES} client procs x ${NAMES / CLIENT_PROCESSES} names`,
        key: 'processes',
        names: processNames,
        clientPids: clients.map((c) => c.pid),
      },
      {
        label: `${NAMES} tunnels (fleet driver)`,
        key: 'tunnels',
        names: fleetNames,
        clientPids: [fleet.pid],
      },
    ];
    for (const variant of variants) {
      const proxyCpu = cpuMeter([proxy.pid]);
      const clientCpu = cpuMeter(variant.clientPids);
      const result = await ctx.driver.run(job(natproxRoute(variant.names)));
      const proxyMs = proxyCpu.elapsedMs();
      const clientMs = clientCpu.elapsedMs();
      check(variant.key, result);
      const perScrape = (ms: number): number => (ms * 1000) / Math.max(1, result.ok);
      const natRate = rate(result);
      const directRate = rate(direct);
      rows.push(
        row({
          scenario: SCENARIO,
          metric: `scrapes/s, 64 conc., ${variant.label}`,
          unit: '/s',
          natprox: natRate,
          direct: directRate,
          goal: {
            text: '>= 30% of direct',
            value: (natRate / directRate) * 100,
            unit: '%',
            min: 30,
          },
        }),
        row({
          scenario: SCENARIO,
          metric: `p99, ${variant.label}`,
          unit: 'ms',
          natprox: result.latency.p99Ms,
          direct: direct.latency.p99Ms,
        }),
        row({
          scenario: SCENARIO,
          metric: `CPU per scrape: proxy (${variant.key})`,
          unit: 'µs',
          natprox: perScrape(proxyMs),
        }),
        row({
          scenario: SCENARIO,
          metric: `CPU per scrape: client (${variant.key})`,
          unit: 'µs',
          natprox: perScrape(clientMs),
        }),
      );
      details[variant.key] = { result, proxyCpuMs: proxyMs, clientCpuMs: clientMs };
    }
    rows.push(
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: target',
        unit: 'µs',
        natprox: null,
        direct: (targetDirectMs * 1000) / Math.max(1, direct.ok),
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
