/**
 * multi-proxy: the cost of high availability on the client. One `natprox client` process
 * with one tunnel (1 proxy) and then with three (3 proxies, `--proxy-url` repeated), under
 * the same total scrape load, spread evenly over its proxies. Compares the client's RSS, peak
 * RSS and CPU time: the goal is 3 proxies within 3x of 1.
 */
import { sleep } from '../lib/children.js';
import { startTarget, type TargetProcess } from '../lib/helpers.js';
import { startClient, startProxy, waitListed, type ProxyProcess } from '../lib/natprox.js';
import { cpuMeter, resetPeak, sampleProcess } from '../lib/proc-stats.js';
import { row, type Row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'multi-proxy';
const NAME = 'multi-1';

interface Measured {
  proxies: number;
  rssMiB: number;
  peakRssMiB: number;
  cpuMs: number;
  scrapes: number;
  errors: number;
}

async function measure(
  ctx: Context,
  target: TargetProcess,
  proxyCount: number,
  ratePerSec: number,
  durationMs: number,
): Promise<Measured> {
  const proxies: ProxyProcess[] = [];
  for (let i = 0; i < proxyCount; i += 1) proxies.push(await startProxy());
  const client = startClient({
    proxyUrl: proxies.map((proxy) => proxy.url),
    names: [NAME],
    allowPorts: [target.port],
  });
  try {
    await Promise.all(proxies.map((proxy) => waitListed(proxy.port, [NAME], 15_000)));
    await sleep(500); // let start-up garbage settle before the baseline
    resetPeak(client.pid);
    const cpu = cpuMeter([client.pid]);
    const results = await Promise.all(
      proxies.map((proxy) =>
        ctx.driver.run({
          route: {
            via: 'natprox',
            proxyPort: proxy.port,
            targetPort: target.port,
            names: [NAME],
            path: '/metrics',
          },
          mode: 'open',
          ratePerSec: ratePerSec / proxyCount,
          durationMs,
          expectStatus: 200,
          timeoutMs: 10_000,
          maxInFlight: 2000,
        }),
      ),
    );
    const cpuMs = cpu.elapsedMs();
    const sample = sampleProcess(client.pid);
    const errors = results.reduce((sum, r) => sum + r.errors, 0);
    if (errors > 0) {
      ctx.fail(
        `multi-proxy (${proxyCount}): ${errors} errors, e.g. ${results.flatMap((r) => r.errorSamples)[0]}`,
      );
    }
    return {
      proxies: proxyCount,
      rssMiB: sample.rssKiB / 1024,
      peakRssMiB: sample.hwmKiB / 1024,
      cpuMs,
      scrapes: results.reduce((sum, r) => sum + r.ok, 0),
      errors,
    };
  } finally {
    await client.stop();
    await Promise.all(proxies.map((proxy) => proxy.stop(6000)));
  }
}

export async function multiProxy(ctx: Context): Promise<ScenarioResult> {
  const ratePerSec = ctx.quick ? 150 : 300;
  const durationMs = ctx.quick ? 2000 : 10_000;
  const target = await startTarget();
  try {
    const one = await measure(ctx, target, 1, ratePerSec, durationMs);
    const three = await measure(ctx, target, 3, ratePerSec, durationMs);
    const within3x = (metric: string, unit: string, a: number, b: number): Row =>
      row({
        scenario: SCENARIO,
        metric,
        unit,
        natprox: b,
        direct: a,
        goal: { text: '3 proxies <= 3x of 1', value: b / a, unit: 'x', max: 3 },
        note: 'natprox column: the client with 3 proxies; direct column: with 1 proxy',
      });
    const rows = [
      within3x('client RSS after the load, 3 vs 1 proxy', 'MiB', one.rssMiB, three.rssMiB),
      within3x('client peak RSS under load, 3 vs 1 proxy', 'MiB', one.peakRssMiB, three.peakRssMiB),
      within3x('client CPU during the load, 3 vs 1 proxy', 'ms', one.cpuMs, three.cpuMs),
      row({
        scenario: SCENARIO,
        metric: `errors in scrapes (${ratePerSec}/s in all)`,
        unit: '',
        natprox: three.errors,
        direct: one.errors,
        goal: { text: 'none', value: one.errors + three.errors, unit: '', max: 0 },
      }),
    ];
    return { rows, details: { ratePerSec, durationMs, one, three } };
  } finally {
    await target.stop();
  }
}
