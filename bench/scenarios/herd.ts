/**
 * herd: many connected clients (10,000; quick: 500), then the proxy is stopped, stays away
 * long enough for every client's reconnect delay to reach its ceiling (20 s; quick: 3 s),
 * and starts again on the same port. Measured from the moment it listens again: how long
 * until every tunnel is back, and what the herd costs the proxy (peak RSS, CPU). No client
 * may give up. The goals: all back within 15 s, the proxy's peak RSS within the fleet's.
 */
import { sleep } from '../lib/children.js';
import { connectFleet, forkFleet, startTarget, type FleetProcess } from '../lib/helpers.js';
import { startProxy, type ProxyProcess } from '../lib/natprox.js';
import { cpuMeter, sampleProcess } from '../lib/proc-stats.js';
import { row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'herd';
/** How often the fleet is asked how many tunnels are up while it comes back. */
const POLL_MS = 250;
/** Give up measuring after this long (the goal is 15 s). */
const MAX_WAIT_MS = 90_000;

export async function herd(ctx: Context): Promise<ScenarioResult> {
  const clients = ctx.quick ? 500 : 10_000;
  const processes = ctx.quick ? 1 : 4;
  const outageMs = ctx.quick ? 3000 : 20_000;
  const target = await startTarget();
  const config = { limits: { max_clients: clients + 100 } };
  let proxy: ProxyProcess | undefined = await startProxy({ cpuProfDir: ctx.cpuProfDir, config });
  const listen = `127.0.0.1:${proxy.port}`;
  const fleets: FleetProcess[] = [];
  try {
    const perProcess = Math.ceil(clients / processes);
    const forks = await Promise.all(Array.from({ length: processes }, () => forkFleet()));
    fleets.push(
      ...(await Promise.all(
        forks.map((spawned, p) =>
          connectFleet(
            spawned,
            {
              proxyUrl: proxy?.url ?? '',
              prefix: 'herd-',
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
    const connectedBefore = await connectedCount(fleets);
    if (connectedBefore < clients)
      ctx.fail(`herd: only ${connectedBefore} of ${clients} connected`);

    await proxy.stop(2000);
    proxy = undefined;
    await sleep(outageMs);
    const downCount = await connectedCount(fleets);
    proxy = await startProxy({ cpuProfDir: ctx.cpuProfDir, config, listen });
    const listeningAt = performance.now();
    const cpu = cpuMeter([proxy.pid]);
    let peakRssKiB = 0;
    const backAt: number[] = [];
    let connected = 0;
    while (performance.now() - listeningAt < MAX_WAIT_MS) {
      peakRssKiB = Math.max(peakRssKiB, sampleProcess(proxy.pid).hwmKiB);
      connected = await connectedCount(fleets);
      backAt.push(connected);
      if (connected >= clients) break;
      await sleep(POLL_MS);
    }
    const allBackMs = performance.now() - listeningAt;
    const proxyCpuMs = cpu.elapsedMs();
    peakRssKiB = Math.max(peakRssKiB, sampleProcess(proxy.pid).hwmKiB);
    const total = (await Promise.all(fleets.map((f) => f.status()))).reduce(
      (n, s) => n + s.total,
      0,
    );
    const back = connected >= clients;
    const rows = [
      row({
        scenario: SCENARIO,
        metric: `all ${clients} tunnels back after the proxy restarted`,
        unit: 's',
        natprox: back ? allBackMs / 1000 : Number.NaN,
        goal: { text: '<= 15 s', value: back ? allBackMs / 1000 : Infinity, unit: 's', max: 15 },
        note: `proxy away ${outageMs / 1000} s (${downCount} tunnels up meanwhile); ${connected} of ${clients} back`,
      }),
      row({
        scenario: SCENARIO,
        metric: 'proxy peak RSS during the herd',
        unit: 'MiB',
        natprox: peakRssKiB / 1024,
        goal: { text: '<= 1 GiB', value: peakRssKiB / 1024, unit: 'MiB', max: 1024 },
      }),
      row({
        scenario: SCENARIO,
        metric: 'proxy CPU until all were back',
        unit: 'ms',
        natprox: proxyCpuMs,
        note: `${((proxyCpuMs * 1000) / clients).toFixed(0)} µs per tunnel`,
      }),
      row({
        scenario: SCENARIO,
        metric: 'clients that gave up',
        unit: '',
        natprox: clients - total,
        goal: { text: 'none', value: clients - total, unit: '', max: 0 },
      }),
    ];
    return {
      rows,
      details: {
        clients,
        processes,
        outageMs,
        connectedBefore,
        downCount,
        allBackMs,
        backAt,
        peakRssKiB,
        proxyCpuMs,
      },
    };
  } finally {
    await Promise.all([...fleets.map((f) => f.close()), proxy?.stop(6000), target.stop()]);
  }
}

async function connectedCount(fleets: readonly FleetProcess[]): Promise<number> {
  const states = await Promise.all(fleets.map((f) => f.status()));
  return states.reduce((n, s) => n + s.connected, 0);
}
