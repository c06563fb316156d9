/**
 * The soak: natprox across the namespace link (see e2e/helpers/netns.ts) at 20 scrapes/s
 * (node_exporter) plus /federate of the home Prometheus once a second, for `--minutes N`
 * (default 10), while faults cycle: a blackhole both ways, the home-to-VPS
 * direction dropped, the home's address moved; the proxy restarts once, at half time.
 *
 * Checks that every scrape ends as a complete 200 or a clean error (none hangs past its
 * deadline), and that the RSS and open fds of the proxy and the client stay flat after
 * warm-up (<= 10% growth). Prints "figure:" lines; exits 1 when a check fails.
 *
 *   npm run soak                  (builds, then 10 minutes)
 *   npm run soak -- --minutes 2
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { endedCleanly } from '../helpers/fault-episode.js';
import {
  CLIENT_NAME,
  Deployment,
  FEDERATE_PATH,
  HOME_PROMETHEUS_PORT,
  Load,
  type LoadResult,
} from '../helpers/netns-deployment.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
  },
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
if (!(MINUTES > 0 && MINUTES <= 120) || !(RATE > 0 && RATE <= 200)) {
  console.error('usage: npm run soak -- [--minutes N (0-120, default 10)] [--rate PER_SECOND]');
  process.exit(2);
}
const TOTAL_MS = MINUTES * 60_000;
const DEADLINE_MS = 10_000;
const FAULT_MS = 20_000;
const HEALTHY_MS = 25_000;
/**
 * Samples before this much time are warm-up, for the growth checks: one whole cycle of the
 * faults (each kind once), as V8 sizes its heaps to the load and to the piles of scrapes a
 * silent tunnel collects.
 */
const WARM_UP_MS = Math.min(150_000, TOTAL_MS / 4);
const CLIENT_METRICS_PORT = 9101;
const SAMPLE_EVERY_MS = 5000;
const GROWTH_LIMIT = 0.1;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  at: number;
  rssKiB: number;
  fds: number;
}

interface HeapSample {
  at: number;
  heapUsedKiB: number;
}

/** nodejs_heap_size_used_bytes from a natprox /metrics text, in KiB. */
function heapUsedKiB(text: string | undefined): number | undefined {
  const match = /^natprox_(?:client|proxy)_nodejs_heap_size_used_bytes (\S+)/m.exec(text ?? '');
  return match ? Number(match[1]) / 1024 : undefined;
}

/** The lowest heap in use per minute after `from` (the floor after garbage collections). */
function heapFloors(samples: HeapSample[], from: number): number[] {
  const floors = new Map<number, number>();
  for (const s of samples) {
    if (s.at < from) continue;
    const minute = Math.floor((s.at - from) / 60_000);
    floors.set(minute, Math.min(floors.get(minute) ?? Infinity, s.heapUsedKiB));
  }
  return [...floors.values()].map((kib) => Math.round(kib / 102.4) / 10);
}

/** Median RSS per minute (MiB), for the figures. */
function rssByMinute(samples: Sample[], from: number): number[] {
  const byMinute = new Map<number, number[]>();
  for (const s of samples) {
    if (s.at < from) continue;
    const minute = Math.floor((s.at - from) / 60_000);
    byMinute.set(minute, [...(byMinute.get(minute) ?? []), s.rssKiB]);
  }
  return [...byMinute.values()].map((kib) => Math.round(median(kib) / 102.4) / 10);
}

function sample(pid: number | undefined): Sample | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { at: Date.now(), rssKiB, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

/** Growth of the median of the last `n` samples over the median of the first `n` after warm-up. */
function growth(
  samples: Sample[],
  from: number,
  key: 'rssKiB' | 'fds',
  n = 6,
): { first: number; last: number; growth: number } {
  const warm = samples.filter((s) => s.at >= from);
  const first = median(warm.slice(0, n).map((s) => s[key]));
  const last = median(warm.slice(-n).map((s) => s[key]));
  return { first, last, growth: (last - first) / first };
}

async function main(): Promise<void> {
  const d = new Deployment();
  const startedAt = Date.now();
  const stopAt = startedAt + TOTAL_MS;
  const hardStop = setTimeout(() => {
    console.error('soak: still running 3 minutes past its end; stopping');
    d.net.destroySync();
    process.exit(1);
  }, TOTAL_MS + 180_000);
  hardStop.unref();
  let failedChecks: string[];
  try {
    await d.start({
      clientArgs: [
        '--metrics-listen',
        `127.0.0.1:${CLIENT_METRICS_PORT}`,
        '--allow',
        `${CLIENT_METRICS_PORT}/metrics`,
      ],
    });
    // node_exporter at the rate, plus the home Prometheus's /federate once a second.
    const load = new Load(d.scraper, RATE, DEADLINE_MS);
    const federate = new Load(d.scraper, 1, DEADLINE_MS, HOME_PROMETHEUS_PORT, FEDERATE_PATH);
    load.start();
    federate.start();
    const clientSamples: Sample[] = [];
    const proxySamples: Sample[][] = [[]];
    const clientHeap: HeapSample[] = [];
    const proxyHeap: HeapSample[][] = [[]];
    /** Reads heap in use from one /metrics into `into` (a failed read is a missing sample). */
    const sampleHeap = (into: HeapSample[] | undefined, where: { url: string; proxy?: string }) =>
      void d.scraper
        .request({ ...where, deadlineMs: 2000, keepBody: true, identity: true })
        .then((r) => {
          const kib = heapUsedKiB(r.body);
          if (kib !== undefined) into?.push({ at: Date.now(), heapUsedKiB: kib });
        });
    const sampler = setInterval(() => {
      const c = sample(d.client.child.pid);
      if (c) clientSamples.push(c);
      const p = sample(d.proxy.child.pid);
      if (p) proxySamples.at(-1)?.push(p);
      // Heap in use, from each one's /metrics (the client's through its own tunnel).
      sampleHeap(proxyHeap.at(-1), { url: 'http://127.0.0.1:8080/metrics' });
      sampleHeap(clientHeap, {
        url: `http://${CLIENT_NAME}:${CLIENT_METRICS_PORT}/metrics`,
        proxy: '127.0.0.1:8080',
      });
    }, SAMPLE_EVERY_MS);
    let downMs = 0;
    const faults: string[] = [];
    let restarted = false;
    let proxyRestartAt = 0;
    const timeLeft = (): number => stopAt - Date.now();
    const waitBack = async (): Promise<number> => {
      const t = Date.now();
      await d.waitForTunnel(60_000, 100);
      return Date.now() - t;
    };
    for (let cycle = 0; timeLeft() > HEALTHY_MS; cycle++) {
      await sleep(Math.min(HEALTHY_MS, timeLeft()));
      if (!restarted && Date.now() - startedAt >= TOTAL_MS / 2) {
        restarted = true;
        const t = Date.now();
        await d.proxy.stop('SIGTERM');
        proxySamples.push([]);
        proxyHeap.push([]);
        d.startProxy();
        await d.proxy.waitForLine(/proxy listening/, 15_000);
        await waitBack();
        proxyRestartAt = Date.now();
        downMs += proxyRestartAt - t;
        faults.push(`proxy restart (${((proxyRestartAt - t) / 1000).toFixed(1)} s)`);
        continue;
      }
      if (timeLeft() < FAULT_MS + 10_000) break;
      const kind = cycle % 3;
      const t = Date.now();
      if (kind === 0 || kind === 1) {
        if (kind === 0) d.net.blackhole();
        else d.net.dropHomeToVps();
        await sleep(FAULT_MS);
        d.net.heal();
        const back = await waitBack();
        downMs += Date.now() - t;
        faults.push(`${kind === 0 ? 'blackhole' : 'home-to-VPS dropped'} ${FAULT_MS / 1000} s (back ${(back / 1000).toFixed(1)} s after healing)`); // prettier-ignore
      } else {
        const old = (await d.scraper.clients()).find((c) => c.names.includes(CLIENT_NAME));
        d.net.moveHomeAddress();
        // Down until a tunnel from the new address is listed and the old one is gone.
        for (let i = 0; i < 600; i++) {
          const listed = (await d.scraper.clients()).filter((c) => c.names.includes(CLIENT_NAME));
          if (listed.length > 0 && !listed.some((c) => c.id === old?.id)) break;
          await sleep(100);
        }
        downMs += Date.now() - t;
        faults.push(`address moved (down ${((Date.now() - t) / 1000).toFixed(1)} s)`);
      }
    }
    await sleep(Math.max(0, timeLeft()));
    clearInterval(sampler);
    const results = await load.stop();
    const federated = await federate.stop();
    const whole = federated.filter((r) => r.status === 200 && r.outcome === 'complete');
    console.log(`figure: soak: federate scrapes ${federated.length}, complete 200 ${whole.length}, median body ${median(whole.map((r) => r.bytes))} bytes (gzip)`); // prettier-ignore
    results.push(...federated);
    failedChecks = report(
      results,
      clientSamples,
      proxySamples,
      startedAt,
      proxyRestartAt,
      downMs,
      faults,
    );
    const fromWarm = startedAt + WARM_UP_MS;
    const proxyFrom = (i: number): number => (i === 0 ? fromWarm : proxyRestartAt + WARM_UP_MS);
    console.log(`figure: soak: client RSS by minute after warm-up (MiB): ${rssByMinute(clientSamples, fromWarm).join(', ')}`); // prettier-ignore
    console.log(`figure: soak: client heap floor by minute after warm-up (MiB): ${heapFloors(clientHeap, fromWarm).join(', ')}`); // prettier-ignore
    console.log(`figure: soak: proxy RSS by minute after warm-up (MiB): ${proxySamples.map((p, i) => rssByMinute(p, proxyFrom(i)).join(', ')).join(' | restart | ')}`); // prettier-ignore
    console.log(`figure: soak: proxy heap floor by minute after warm-up (MiB): ${proxyHeap.map((p, i) => heapFloors(p, proxyFrom(i)).join(', ')).join(' | restart | ')}`); // prettier-ignore
  } catch (err) {
    console.error(`soak failed: ${(err as Error).stack}\n${d.report()}`);
    failedChecks = ['the soak itself failed'];
  } finally {
    await d.stop();
    clearTimeout(hardStop);
  }
  if (failedChecks.length > 0) {
    console.error(`soak: FAILED: ${failedChecks.join('; ')}`);
    process.exit(1);
  }
  console.log('soak: every check passed');
}

function report(
  results: LoadResult[],
  clientSamples: Sample[],
  proxySamples: Sample[][],
  startedAt: number,
  proxyRestartAt: number,
  downMs: number,
  faults: string[],
): string[] {
  const failures: string[] = [];
  const complete = results.filter((r) => r.status === 200 && r.outcome === 'complete').length;
  const byKind = new Map<string, number>();
  for (const r of results) {
    if (r.status === 200 && r.outcome === 'complete') continue;
    const key = r.status === 0 ? `no answer (${r.error ?? r.outcome})` : `${r.status} ${r.natproxError ?? ''}${r.outcome === 'complete' ? '' : ` ${r.outcome}`}`; // prettier-ignore
    byKind.set(key, (byKind.get(key) ?? 0) + 1);
  }
  const hung = results.filter((r) => r.outcome === 'hung' || r.totalMs > r.deadlineMs + 1000);
  const minutes = (Date.now() - startedAt) / 60_000;
  const failed = results.length - complete;
  console.log(
    `figure: soak: ${minutes.toFixed(1)} min at ${RATE} scrapes/s; faults: ${faults.join(', ')}`,
  );
  console.log(`figure: soak: scrapes ${results.length}, complete 200 ${complete}, failed ${failed} (${[...byKind].map(([k, n]) => `${k}: ${n}`).join(', ')}), past their deadline ${hung.length}`); // prettier-ignore
  console.log(`figure: soak: link down ${(downMs / 1000).toFixed(0)} s in all; failed scrapes ${failed} = ${(failed / RATE).toFixed(0)} s of scrapes at ${RATE}/s (${((failed / RATE / (downMs / 1000)) * 100).toFixed(0)}% of the down time)`); // prettier-ignore
  if (hung.length > 0) failures.push(`${hung.length} scrapes ended past their deadline or never`);
  const unclean = results.filter((r) => !endedCleanly(r));
  if (unclean.length > 0) {
    console.log(`figure: soak: ${unclean.length} scrapes did not end cleanly, e.g. ${JSON.stringify(unclean[0])}`); // prettier-ignore
    failures.push(`${unclean.length} scrapes neither a complete 200 nor a clean error`);
  }
  const warmFrom = startedAt + WARM_UP_MS;
  const checks: Array<[string, Sample[], number]> = [
    ['client', clientSamples, warmFrom],
    ['proxy (before its restart)', proxySamples[0] ?? [], warmFrom],
  ];
  if (proxySamples[1]) checks.push(['proxy (after its restart)', proxySamples[1], proxyRestartAt + WARM_UP_MS]); // prettier-ignore
  for (const [name, samples, from] of checks) {
    if (samples.filter((s) => s.at >= from).length < 12) {
      console.log(`figure: soak: ${name}: too few samples after warm-up to judge growth`);
      continue;
    }
    const rss = growth(samples, from, 'rssKiB');
    const fds = growth(samples, from, 'fds');
    console.log(`figure: soak: ${name}: RSS ${(rss.first / 1024).toFixed(1)} -> ${(rss.last / 1024).toFixed(1)} MiB (${(rss.growth * 100).toFixed(1)}%), open fds ${fds.first} -> ${fds.last} (peak ${Math.max(...samples.map((s) => s.fds))})`); // prettier-ignore
    if (rss.growth > GROWTH_LIMIT)
      failures.push(`${name} RSS grew ${(rss.growth * 100).toFixed(1)}%`);
    // A handful of fds (sockets of scrapes in flight) is noise, not a leak.
    if (fds.last - fds.first > Math.max(5, fds.first * GROWTH_LIMIT)) failures.push(`${name} open fds grew ${fds.first} -> ${fds.last}`); // prettier-ignore
  }
  return failures;
}

await main();
