/**
 * floor: the throughput and latency scenarios run against a bare two-hop relay
 * (bench/floor/): the same exchanges natprox makes, written straight on node:http and
 * node:http2, with none of natprox's checks, deadlines, metrics or logs. Its
 * figures show what two Node hops cost on this machine, the floor under natprox's own;
 * no goals (the "natprox" column holds the bare relay's figures). One more sequential route
 * goes through a single plain HTTP/1 forward proxy (bench/floor/one-hop-relay.ts): what one
 * hop costs.
 */
import { forkHelper, nextMessage } from '../lib/children.js';
import { startBareRelay, type BareRelay } from '../lib/bare-relay.js';
import { startTarget } from '../lib/helpers.js';
import type { LatencySummary, LoadResult, Route } from '../lib/load-types.js';
import { row, type Row } from '../lib/report.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';
import { measureSequential } from './latency.js';
import {
  CLIENT_PROCESSES,
  NAMES,
  measureThroughput,
  scrapesPerSecond,
  throughputMs,
} from './throughput.js';

const SCENARIO = 'floor';
const NOTE = 'natprox column: the bare relay (bench/floor/), not natprox';

export async function floor(ctx: Context): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 1 : 2;
  const target = await startTarget();
  const oneHop = forkHelper('floor/one-hop-relay.ts', [String(target.port)]);
  let relay: BareRelay | undefined;
  try {
    const listening = (m: unknown): m is { type: 'listening'; port: number } =>
      (m as { type?: string }).type === 'listening';
    const oneHopPort = (await nextMessage(oneHop, listening, 20_000, 'one-hop relay start')).port;
    const names = Array.from({ length: NAMES }, (_, i) => `floor-${i}`);
    relay = await startBareRelay(
      target.port,
      Array.from({ length: CLIENT_PROCESSES }, (_, p) =>
        names.filter((_, i) => i % CLIENT_PROCESSES === p),
      ),
    );
    const { port, proxy, clients } = relay;
    const direct: Route = { via: 'direct', targetPort: target.port, path: '/metrics' };
    /** Through a relay on `proxyPort` (the bare proxy unless told), as natprox is addressed. */
    const bare = (routeNames: string[], proxyPort = port): Route => ({
      via: 'natprox',
      proxyPort,
      targetPort: target.port,
      names: routeNames,
      path: '/metrics',
    });
    const check = (what: string, result: LoadResult): void =>
      failOnErrors(ctx, `floor (${what})`, result);

    // Throughput, with the throughput scenario's rounds and 4-process layout.
    const measured = await measureThroughput(
      ctx,
      [
        { key: 'direct', route: direct, cpu: {} },
        {
          key: 'bare',
          route: bare(names),
          cpu: { proxy: [proxy.pid], client: clients.map((c) => c.pid) },
        },
      ],
      (key, result) => check(key === 'bare' ? 'bare relay' : key, result),
    );
    const directLoad = measured.get('direct');
    const bareLoad = measured.get('bare');
    if (!directLoad || !bareLoad) throw new Error('floor: a throughput route was not measured');

    // Sequential latency, as the latency scenario measures it: direct, bare and one-hop
    // rounds taking turns. The one-hop relay is addressed like a proxy (the name only
    // becomes the Host).
    const latencies = await measureSequential(
      ctx,
      [
        { key: 'direct', route: direct, cpu: {} },
        { key: 'bare', route: bare(['floor-0']), cpu: {} },
        { key: 'oneHop', route: bare(['floor-0'], oneHopPort), cpu: {} },
      ],
      rounds,
      (what, result) => check(`sequential ${what}`, result),
    );
    const latencyOf = (key: string): LatencySummary => {
      const measurement = latencies.get(key);
      if (!measurement) throw new Error(`floor: the ${key} route was not measured`);
      return measurement.latency;
    };
    const sequential = {
      direct: latencyOf('direct'),
      bare: latencyOf('bare'),
      oneHop: latencyOf('oneHop'),
    };

    const rows: Row[] = [
      row({
        scenario: SCENARIO,
        metric: `scrapes/s, 64 conc., bare relay, ${CLIENT_PROCESSES} client procs`,
        unit: '/s',
        natprox: scrapesPerSecond(bareLoad.result),
        direct: scrapesPerSecond(directLoad.result),
        note: NOTE,
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: bare proxy',
        unit: 'µs',
        natprox: bareLoad.cpuPerScrapeUs('proxy'),
      }),
      row({
        scenario: SCENARIO,
        metric: 'CPU per scrape: bare clients',
        unit: 'µs',
        natprox: bareLoad.cpuPerScrapeUs('client'),
      }),
      row({
        scenario: SCENARIO,
        metric: 'p50, 10 KiB sequential, bare relay',
        unit: 'ms',
        natprox: sequential.bare.p50Ms,
        direct: sequential.direct.p50Ms,
        note: `added ${(sequential.bare.p50Ms - sequential.direct.p50Ms).toFixed(3)} ms`,
      }),
      row({
        scenario: SCENARIO,
        metric: 'p99, 10 KiB sequential, bare relay',
        unit: 'ms',
        natprox: sequential.bare.p99Ms,
        direct: sequential.direct.p99Ms,
        note: `added ${(sequential.bare.p99Ms - sequential.direct.p99Ms).toFixed(3)} ms`,
      }),
      row({
        scenario: SCENARIO,
        metric: 'p50, 10 KiB sequential, one plain HTTP/1 hop',
        unit: 'ms',
        natprox: sequential.oneHop.p50Ms,
        direct: sequential.direct.p50Ms,
        note: `added ${(sequential.oneHop.p50Ms - sequential.direct.p50Ms).toFixed(3)} ms; natprox's path has two hops (bench/floor/one-hop-relay.ts)`,
      }),
    ];
    return {
      rows,
      details: {
        durationMs: throughputMs(ctx),
        direct: { result: directLoad.result, roundRates: directLoad.roundRates },
        bare: { result: bareLoad.result, roundRates: bareLoad.roundRates },
        proxyCpuMs: bareLoad.cpuMs.proxy,
        clientCpuMs: bareLoad.cpuMs.client,
        sequential,
      },
    };
  } finally {
    await Promise.all([relay?.stop(), oneHop.stop(), target.stop()]);
  }
}
