/**
 * footprint: what natprox costs on a small machine (issue 19), for both ways of running it:
 * `node bin/natprox.js` (the npm package) and `node dist/natprox.mjs` (the single file).
 *   - `natprox --version` wall time, median of several runs;
 *   - client start to tunnel up: from spawning the client until the proxy's /clients lists
 *     its name (polled every 5 ms);
 *   - client resident memory (VmRSS) idle, 12 s after start (V8's memory reducer has run by
 *     then; the reading 2 s after the tunnel is up is an info row), and 12 s after 10,000
 *     scrapes of 10 KiB and 20 of 5 MiB (quick: 500 and 3), long enough for both idle
 *     collections of src/util/idle-reclaim.ts (the reading at 3 s is in the note);
 *   - the proxy's resident memory with that one client, idle, before any scrape;
 *   - CPU per 10 KiB scrape of the proxy and the client (one at a time, one connection).
 */
import { spawn, spawnSync } from 'node:child_process';
import { basename } from 'node:path';
import { BIN, SINGLE_FILE, sleep, type Spawned } from '../lib/children.js';
import { startTarget } from '../lib/helpers.js';
import type { LoadJob, Route } from '../lib/load-types.js';
import { listedNames, startClient, startProxy } from '../lib/natprox.js';
import { cpuMeter, sampleProcess } from '../lib/proc-stats.js';
import { row, type Row } from '../lib/report.js';
import { failOnErrors, MiB, type Context, type ScenarioResult } from '../lib/context.js';

const SCENARIO = 'footprint';
const KiB_PER_MiB = 1024;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Median wall time of `node ARGS` (`ENTRY --version`, or `-e 0`: the runtime's floor), ms. */
function wallMs(args: string[], runs: number): { medianMs: number; runsMs: number[] } {
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const t0 = performance.now();
    const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
    runsMs.push(performance.now() - t0);
    if (result.status !== 0) throw new Error(`node ${args.join(' ')}: exit ${result.status}`);
  }
  return { medianMs: median(runsMs), runsMs };
}

/** VmRSS of an idle `node` that has loaded nothing: the runtime's floor, in KiB. */
async function floorRssKiB(settleMs: number): Promise<number> {
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  try {
    await sleep(settleMs);
    return sampleProcess(idle.pid ?? 0).rssKiB;
  } finally {
    idle.kill('SIGKILL');
  }
}

/** Spawns a client and resolves with it and the ms until the proxy lists its name. */
async function startTimed(
  entry: string,
  proxy: { port: number; url: string },
  name: string,
  targetPort: number,
): Promise<{ client: Spawned; upMs: number }> {
  const t0 = performance.now();
  const client = startClient({
    proxyUrl: proxy.url,
    names: [name],
    allowPorts: [targetPort],
    entry,
  });
  for (;;) {
    if ((await listedNames(proxy.port)).has(name)) return { client, upMs: performance.now() - t0 };
    if (performance.now() - t0 > 15_000) throw new Error(`footprint: ${name} not up in 15 s`);
    await sleep(5);
  }
}

const mib = (kib: number): number => kib / KiB_PER_MiB;

export async function footprint(ctx: Context): Promise<ScenarioResult> {
  const versionRuns = ctx.quick ? 3 : 9;
  const starts = ctx.quick ? 1 : 3;
  const settleMs = ctx.quick ? 1000 : 2000;
  // Idle is read once V8's memory reducer has run: it shrinks a process's heap 8-10 s after
  // start, whatever the process does, so a sample 2 s after start reads start-up's leftovers
  // (kept as an info row).
  const idleAfterStartMs = 12_000;
  // After the load: the client collects once it has been quiet for 2 s and, if the load grew
  // V8's young generation, again at 6.5 s, but at most every 10 s (src/util/idle-reclaim.ts):
  // a collection between the two loads can put the next one off until 10 s after it, so the
  // reading is taken at 12 s; the one at 3 s is kept as info.
  const afterLoadEarlyMs = 3000;
  const afterLoadMs = 12_000;
  const smallScrapes = ctx.quick ? 500 : 10_000;
  const bigScrapes = ctx.quick ? 3 : 20;
  const target = await startTarget();
  const proxy = await startProxy();
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  try {
    // The direct column of this scenario: plain `node`, which natprox cannot go below.
    const floor = {
      version: wallMs(['-e', '0'], versionRuns),
      rssKiB: await floorRssKiB(settleMs),
    };
    details.floor = floor;
    const FLOOR_NOTE = 'direct column: plain node (`node -e 0`), the runtime alone';
    for (const [label, entry] of [
      ['bin/natprox.js', BIN],
      ['dist/natprox.mjs', SINGLE_FILE],
    ] as const) {
      const version = wallMs([entry, '--version'], versionRuns);
      // Several starts (full run), each to its own name; the last client stays for the rest.
      const upMs: number[] = [];
      let client: Spawned | undefined;
      let name = '';
      let startedAt = 0;
      for (let i = 0; i < starts; i += 1) {
        await client?.stop();
        startedAt = performance.now();
        name = `fp-${basename(entry).replace(/\W/g, '-')}-${i}`;
        const started = await startTimed(entry, proxy, name, target.port);
        client = started.client;
        upMs.push(started.upMs);
      }
      if (!client) throw new Error('footprint: no client started');
      await sleep(settleMs);
      const early = sampleProcess(client.pid);
      await sleep(idleAfterStartMs - (performance.now() - startedAt));
      const idle = { client: sampleProcess(client.pid), proxy: sampleProcess(proxy.pid) };
      const route = (path: string): Route => ({
        via: 'natprox',
        proxyPort: proxy.port,
        targetPort: target.port,
        names: [name],
        path,
      });
      const job = (path: string, count: number): LoadJob => ({
        route: route(path),
        mode: 'closed',
        concurrency: 1,
        count,
        expectStatus: 200,
        timeoutMs: 60_000,
      });
      const cpu = { proxy: cpuMeter([proxy.pid]), client: cpuMeter([client.pid]) };
      const small = await ctx.driver.run(job('/metrics', smallScrapes));
      const cpuUs = {
        proxy: (cpu.proxy.elapsedMs() * 1000) / smallScrapes,
        client: (cpu.client.elapsedMs() * 1000) / smallScrapes,
      };
      failOnErrors(ctx, `footprint ${label} 10 KiB`, small);
      const big = await ctx.driver.run(job(`/bytes?n=${5 * MiB}`, bigScrapes));
      failOnErrors(ctx, `footprint ${label} 5 MiB`, big);
      await sleep(afterLoadEarlyMs);
      const afterEarly = sampleProcess(client.pid);
      await sleep(afterLoadMs - afterLoadEarlyMs);
      const after = sampleProcess(client.pid);
      await client.stop();

      rows.push(
        row({
          scenario: SCENARIO,
          metric: `natprox --version wall, ${label}`,
          unit: 'ms',
          natprox: version.medianMs,
          direct: floor.version.medianMs,
          goal: { text: '<= 120 ms', value: version.medianMs, unit: 'ms', max: 120 },
          note: `median of ${versionRuns}: ${version.runsMs.map((ms) => ms.toFixed(0)).join(', ')} ms; ${FLOOR_NOTE}`,
        }),
        row({
          scenario: SCENARIO,
          metric: `client start to tunnel up, ${label}`,
          unit: 'ms',
          natprox: median(upMs),
          goal: { text: '<= 400 ms', value: median(upMs), unit: 'ms', max: 400 },
          note: `median of ${starts}: ${upMs.map((ms) => ms.toFixed(0)).join(', ')} ms`,
        }),
        row({
          scenario: SCENARIO,
          metric: `client RSS ${settleMs / 1000} s after the tunnel is up, ${label}`,
          unit: 'MiB',
          natprox: mib(early.rssKiB),
          direct: mib(floor.rssKiB),
          note: `before V8's memory reducer has run; ${FLOOR_NOTE}`,
        }),
        row({
          scenario: SCENARIO,
          metric: `client idle RSS, ${label}`,
          unit: 'MiB',
          natprox: mib(idle.client.rssKiB),
          direct: mib(floor.rssKiB),
          note: `${idleAfterStartMs / 1000} s after the client started; ${FLOOR_NOTE}`,
          goal: { text: '<= 50 MiB', value: mib(idle.client.rssKiB), unit: 'MiB', max: 50 },
        }),
        row({
          scenario: SCENARIO,
          metric: `client RSS after ${smallScrapes.toLocaleString('en-US')} x 10 KiB + ${bigScrapes} x 5 MiB, ${label}`,
          unit: 'MiB',
          natprox: mib(after.rssKiB),
          direct: mib(floor.rssKiB),
          goal: { text: '<= 56 MiB', value: mib(after.rssKiB), unit: 'MiB', max: 56 },
          note: `${afterLoadMs / 1000} s after the load (${mib(afterEarly.rssKiB).toFixed(1)} MiB at ${afterLoadEarlyMs / 1000} s); peak ${mib(after.hwmKiB).toFixed(1)} MiB`,
        }),
        row({
          scenario: SCENARIO,
          metric: `CPU per 10 KiB scrape: client, ${label}`,
          unit: 'µs',
          natprox: cpuUs.client,
        }),
      );
      if (entry === BIN) {
        rows.push(
          row({
            scenario: SCENARIO,
            metric: 'proxy idle RSS, 1 client',
            unit: 'MiB',
            natprox: mib(idle.proxy.rssKiB),
            direct: mib(floor.rssKiB),
            goal: { text: '<= 60 MiB', value: mib(idle.proxy.rssKiB), unit: 'MiB', max: 60 },
          }),
          row({
            scenario: SCENARIO,
            metric: 'CPU per 10 KiB scrape: proxy',
            unit: 'µs',
            natprox: cpuUs.proxy,
          }),
        );
      }
      details[label] = {
        versionMs: version.runsMs,
        upMs,
        early,
        idle,
        afterEarly,
        after,
        cpuUsPerScrape: cpuUs,
        small: small.latency,
        big: big.latency,
      };
    }
    return { rows, details };
  } finally {
    await Promise.all([proxy.stop(6000), target.stop()]);
  }
}
