/**
 * fleet: many connected clients (10,000; quick: 1,000), each its own tunnel with one name,
 * opened by a few fleet-driver processes (NatproxClient from the library, many per process),
 * then scrapes at a fixed rate (1,000/s for 60 s; quick: 300/s for 2 s) spread round-robin
 * over all of them. The proxy's peak RSS, the scrape latency, and errors; the same rate sent
 * directly to the target is the baseline.
 *
 * The measured minute follows one round at the same rate that scrapes every tunnel once:
 * a tunnel's first scrape, in processes that have served none yet, is the slow one (in
 * 30 s runs, p99 288 ms for that round against 63 ms for the 30 s after it), and a
 * long-running proxy scrapes each tunnel thousands of times. That round is reported on its
 * own rows; its errors and peak RSS count towards the goals.
 */
import { sleep } from '../lib/children.js';
import { connectFleet, forkFleet, startTarget, type FleetProcess } from '../lib/helpers.js';
import type { LoadJob, Route } from '../lib/load-types.js';
import { getJson, startProxy } from '../lib/natprox.js';
import { cpuMeter, resetPeak, sampleProcess } from '../lib/proc-stats.js';
import { row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'fleet';

export async function fleet(ctx: Context): Promise<ScenarioResult> {
  const clients = ctx.quick ? 1000 : 10_000;
  const processes = ctx.quick ? 2 : 4;
  const ratePerSec = ctx.quick ? 300 : 1000;
  const durationMs = ctx.quick ? 2000 : 60_000;
  const directDurationMs = ctx.quick ? 1000 : 15_000;
  const target = await startTarget();
  // The default max_clients is exactly 10,000; a little headroom keeps a reconnect racing
  // the cleanup of its old session from being refused, which is not what this measures.
  const proxy = await startProxy({
    cpuProfDir: ctx.cpuProfDir,
    config: { limits: { max_clients: clients + 100 } },
  });
  const fleets: FleetProcess[] = [];
  try {
    const idle = sampleProcess(proxy.pid);
    const perProcess = Math.ceil(clients / processes);
    const connectStart = performance.now();
    const forks = await Promise.all(Array.from({ length: processes }, () => forkFleet()));
    fleets.push(
      ...(await Promise.all(
        forks.map((spawned, p) =>
          connectFleet(
            spawned,
            {
              proxyUrl: proxy.url,
              prefix: 'fleet-',
              from: p * perProcess,
              count: Math.min(perProcess, clients - p * perProcess),
              allowPort: target.port,
              connectConcurrency: 50,
            },
            180_000,
          ),
        ),
      )),
    );
    const connectMs = performance.now() - connectStart;
    const connected = fleets.reduce((n, f) => n + f.connected, 0);
    if (connected < clients) {
      ctx.log(`fleet: only ${connected} of ${clients} connected: ${fleets[0]?.firstError}`);
    }
    const groups = await getJson<unknown[]>(proxy.port, '/clients', 30_000);
    const loaded = sampleProcess(proxy.pid);
    const names = Array.from({ length: clients }, (_, i) => `fleet-${i}`);

    const job = (route: Route, ms: number): LoadJob => ({
      route,
      mode: 'open',
      ratePerSec,
      durationMs: ms,
      maxSockets: 256,
      maxInFlight: 2000,
      expectStatus: 200,
      timeoutMs: 15_000,
    });
    // While the baseline runs, natprox only keeps its tunnels alive: what heartbeats cost.
    const idleProxyCpu = cpuMeter([proxy.pid]);
    const idleClientCpu = cpuMeter(fleets.map((f) => f.pid));
    const direct = await ctx.driver.run(
      job({ via: 'direct', targetPort: target.port, path: '/metrics' }, directDurationMs),
    );
    const idleCpuPerSec = (ms: number): number => (ms * 1000) / direct.elapsedMs;
    const idleProxyMs = idleProxyCpu.elapsedMs();
    const idleClientMs = idleClientCpu.elapsedMs();
    if (direct.errors > 0) ctx.fail(`fleet (direct): ${direct.errors} errors`);

    resetPeak(proxy.pid);
    let peakRssKiB = sampleProcess(proxy.pid).hwmKiB;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRssKiB = Math.max(peakRssKiB, sampleProcess(proxy.pid).hwmKiB);
        await sleep(500);
      }
    })();
    const natproxRoute: Route = {
      via: 'natprox',
      proxyPort: proxy.port,
      targetPort: target.port,
      names,
      path: '/metrics',
    };
    const firstRound = await ctx.driver.run(job(natproxRoute, (clients * 1000) / ratePerSec));
    const proxyCpu = cpuMeter([proxy.pid]);
    const clientCpu = cpuMeter(fleets.map((f) => f.pid));
    const natprox = await ctx.driver.run(job(natproxRoute, durationMs));
    sampling = false;
    await sampler;
    peakRssKiB = Math.max(peakRssKiB, sampleProcess(proxy.pid).hwmKiB, loaded.hwmKiB);
    const proxyMs = proxyCpu.elapsedMs();
    const clientMs = clientCpu.elapsedMs();
    const stillConnected = (await Promise.all(fleets.map((f) => f.status()))).reduce(
      (n, s) => n + s.connected,
      0,
    );
    const perScrape = (ms: number): number => (ms * 1000) / Math.max(1, natprox.sent);
    // A window shorter than a few heartbeat intervals (quick mode) would show tunnels that
    // have not ticked yet, so the idle cost is reported from full runs only.
    const idleRows =
      direct.elapsedMs >= 8000
        ? [
            row({
              scenario: SCENARIO,
              metric: `CPU while ${clients} tunnels idle: proxy`,
              unit: 'ms/s',
              natprox: idleCpuPerSec(idleProxyMs),
              note: 'heartbeats only, measured while the direct baseline ran',
            }),
            row({
              scenario: SCENARIO,
              metric: `CPU while ${clients} tunnels idle: clients`,
              unit: 'ms/s',
              natprox: idleCpuPerSec(idleClientMs),
            }),
          ]
        : [];
    const errors = natprox.errors + firstRound.errors;
    const errorSamples = [...firstRound.errorSamples, ...natprox.errorSamples].slice(0, 5);
    const skipped = natprox.skipped + firstRound.skipped;
    const firstRoundNote =
      'each tunnel scraped once, at the same rate, before the measured run; no goal';
    const rows = [
      row({
        scenario: SCENARIO,
        metric: 'clients connected (in /clients)',
        unit: '',
        natprox: groups.length,
        goal: { text: `= ${clients}`, value: groups.length, unit: '', min: clients, max: clients },
        note: `connected in ${(connectMs / 1000).toFixed(1)} s by ${processes} fleet processes`,
      }),
      row({
        scenario: SCENARIO,
        metric: `proxy RSS, ${clients} clients idle`,
        unit: 'MiB',
        natprox: loaded.rssKiB / 1024,
        note: `before the clients connected: ${(idle.rssKiB / 1024).toFixed(1)} MiB`,
      }),
      ...idleRows,
      row({
        scenario: SCENARIO,
        metric: `proxy peak RSS, ${ratePerSec}/s scrapes`,
        unit: 'MiB',
        natprox: peakRssKiB / 1024,
        goal: { text: '<= 1 GiB', value: peakRssKiB / 1024, unit: 'MiB', max: 1024 },
      }),
      row({
        scenario: SCENARIO,
        metric: 'p50, first scrape of each tunnel',
        unit: 'ms',
        natprox: firstRound.latency.p50Ms,
        note: firstRoundNote,
      }),
      row({
        scenario: SCENARIO,
        metric: 'p99, first scrape of each tunnel',
        unit: 'ms',
        natprox: firstRound.latency.p99Ms,
        note: firstRoundNote,
      }),
      row({
        scenario: SCENARIO,
        metric: `p50, ${ratePerSec}/s over ${clients}`,
        unit: 'ms',
        natprox: natprox.latency.p50Ms,
        direct: direct.latency.p50Ms,
      }),
      row({
        scenario: SCENARIO,
        metric: `p99, ${ratePerSec}/s over ${clients}`,
        unit: 'ms',
        natprox: natprox.latency.p99Ms,
        direct: direct.latency.p99Ms,
        goal: { text: '<= 50 ms', value: natprox.latency.p99Ms, unit: 'ms', max: 50 },
      }),
      row({
        scenario: SCENARIO,
        metric: `errors in ${natprox.sent + firstRound.sent} scrapes`,
        unit: '',
        natprox: errors,
        direct: direct.errors,
        goal: { text: 'none', value: errors, unit: '', max: 0 },
        ...(errorSamples.length > 0 ? { note: errorSamples.join('; ') } : {}),
      }),
      row({
        scenario: SCENARIO,
        metric: 'scrapes not sent: 2,000 in flight',
        unit: '',
        natprox: skipped,
        direct: direct.skipped,
        goal: { text: 'none (overload)', value: skipped, unit: '', max: 0 },
      }),
      row({
        scenario: SCENARIO,
        metric: 'scrapes/s achieved',
        unit: '/s',
        natprox: (natprox.sent * 1000) / natprox.elapsedMs,
        direct: (direct.sent * 1000) / direct.elapsedMs,
      }),
      row({
        scenario: SCENARIO,
        metric: 'tunnels still up after the run',
        unit: '',
        natprox: stillConnected,
        goal: { text: `= ${clients}`, value: stillConnected, unit: '', min: clients },
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: proxy',
        unit: 'µs',
        natprox: perScrape(proxyMs),
        note: 'includes heartbeats of all tunnels',
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: clients',
        unit: 'µs',
        natprox: perScrape(clientMs),
        note: 'includes heartbeats of all tunnels',
      }),
    ];
    if (errors > (natprox.sent + firstRound.sent) / 2) ctx.fail(`fleet: ${errors} errors`);
    return {
      rows,
      details: {
        clients,
        processes,
        ratePerSec,
        durationMs,
        connectMs,
        idleCpuMs: { proxy: idleProxyMs, clients: idleClientMs, windowMs: direct.elapsedMs },
        connected,
        listed: groups.length,
        stillConnected,
        idle,
        loaded,
        peakRssKiB,
        direct,
        firstRound,
        natprox,
        proxyCpuMs: proxyMs,
        clientCpuMs: clientMs,
      },
    };
  } finally {
    await Promise.all([...fleets.map((f) => f.close()), proxy.stop(6000), target.stop()]);
  }
}
