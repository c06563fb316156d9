/**
 * federate-size body: 5 MiB and 200 MiB responses, one at a time; MB/s through natprox
 * against direct, and how far the proxy's and the client's resident memory grows above what
 * it was before (peak RSS from VmHWM, reset through /proc/PID/clear_refs before each size).
 */
import { startTarget } from '../lib/helpers.js';
import type { LoadJob, Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { resetPeak, sampleProcess } from '../lib/proc-stats.js';
import { row, type Row } from '../lib/report.js';
import { MiB, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'federate body';

export async function body(ctx: Context): Promise<ScenarioResult> {
  const sizes = [
    { bytes: 5 * MiB, label: '5 MiB', count: ctx.quick ? 10 : 40, rssGoal: false },
    { bytes: 200 * MiB, label: '200 MiB', count: ctx.quick ? 1 : 3, rssGoal: true },
  ];
  const target = await startTarget();
  const proxy = await startProxy({ cpuProfDir: ctx.cpuProfDir });
  const client = startClient({
    proxyUrl: proxy.url,
    names: ['federate-1'],
    allowPorts: [target.port],
    cpuProfDir: ctx.cpuProfDir,
  });
  try {
    await waitListed(proxy.port, ['federate-1'], 15_000);
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    for (const size of sizes) {
      const path = `/bytes?n=${size.bytes}`;
      const job = (route: Route, count: number): LoadJob => ({
        route,
        mode: 'closed',
        concurrency: 1,
        count,
        warmup: 1,
        expectStatus: 200,
        timeoutMs: 120_000,
      });
      const direct = await ctx.driver.run(
        job({ via: 'direct', targetPort: target.port, path }, size.count),
      );
      // Warm both processes up with one body of this size on its own, then measure growth.
      const natRoute: Route = {
        via: 'natprox',
        proxyPort: proxy.port,
        targetPort: target.port,
        names: ['federate-1'],
        path: `/bytes?n=${5 * MiB}`,
      };
      await ctx.driver.run({ ...job(natRoute, 1), warmup: 0 });
      const before = { proxy: sampleProcess(proxy.pid), client: sampleProcess(client.pid) };
      const peakReset = resetPeak(proxy.pid) && resetPeak(client.pid);
      const natprox = await ctx.driver.run(job({ ...natRoute, path }, size.count));
      const after = { proxy: sampleProcess(proxy.pid), client: sampleProcess(client.pid) };
      for (const [via, result] of [
        ['direct', direct],
        ['natprox', natprox],
      ] as const) {
        const expected = size.count * size.bytes;
        if (result.errors > 0 || result.bytes !== expected) {
          ctx.fail(
            `body ${size.label} (${via}): ${result.errors} errors (${result.errorSamples[0] ?? 'none'}), ${result.bytes} of ${expected} bytes`,
          );
        }
      }
      const mbps = (result: { bytes: number; elapsedMs: number }): number =>
        result.bytes / 1e6 / (result.elapsedMs / 1000);
      const natMbps = mbps(natprox);
      const directMbps = mbps(direct);
      const growthMiB = (which: 'proxy' | 'client'): number =>
        (after[which].hwmKiB - before[which].rssKiB) / 1024;
      rows.push(
        row({
          scenario: SCENARIO,
          metric: `MB/s, ${size.label} body`,
          unit: 'MB/s',
          natprox: natMbps,
          direct: directMbps,
          goal: {
            text: '>= 30% of direct',
            value: (natMbps / directMbps) * 100,
            unit: '%',
            min: 30,
          },
        }),
      );
      for (const which of ['proxy', 'client'] as const) {
        const growth = growthMiB(which);
        rows.push(
          row({
            scenario: SCENARIO,
            metric: `peak RSS growth: ${which}, ${size.label}`,
            unit: 'MiB',
            natprox: growth,
            ...(size.rssGoal
              ? { goal: { text: '<= 64 MiB', value: growth, unit: 'MiB', max: 64 } }
              : {}),
            ...(peakReset ? {} : { note: 'VmHWM could not be reset: peak since start' }),
          }),
        );
      }
      details[size.label] = { direct, natprox, before, after, peakReset };
    }
    return { rows, details };
  } finally {
    await Promise.all([client.stop(), proxy.stop(6000), target.stop()]);
  }
}
