/**
 * Which hop natprox's added latency is in: `node --import tsx bench/floor/mixed-hops.ts`.
 * Not a scenario (no goal, not in `npm run bench`); a tool for bench/README.md's "Where the
 * time goes". The bare relay's halves speak natprox's tunnel, so they can be mixed with
 * natprox's: a bare client on `natprox proxy`, and `natprox client` on the bare proxy. Five
 * routes to one 10 KiB target, one keep-alive connection each, scraped in turn one scrape
 * at a time (every route's nth scrape within the same few milliseconds, so the machine's
 * load falls on all of them alike), after a warm-up; p50 per round, and each route's added
 * p50 over direct held against the bare relay's.
 *
 * Arguments: [SCRAPES_PER_ROUTE_PER_ROUND (5000)] [ROUNDS (3)]. Runs dist/ (npm run build).
 */
import http from 'node:http';
import { startBareRelay } from '../lib/bare-relay.js';
import { forkHelper } from '../lib/children.js';
import { startTarget } from '../lib/helpers.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';

interface HopRoute {
  key: string;
  /** The proxy to send absolute-form requests to; undefined: scrape the target directly. */
  proxyPort: number | undefined;
  name: string;
  agent: http.Agent;
}

const perRound = Number(process.argv[2] ?? 5000);
const rounds = Number(process.argv[3] ?? 3);
const WARM_UP = 2000;

function scrape(route: HopRoute, targetPort: number): Promise<number> {
  const startedAt = performance.now();
  const authority = `${route.name}:${targetPort}`;
  const options: http.RequestOptions =
    route.proxyPort === undefined
      ? { port: targetPort, path: '/metrics', headers: { host: `127.0.0.1:${targetPort}` } }
      : {
          port: route.proxyPort,
          path: `http://${authority}/metrics`,
          headers: { host: authority, 'x-prometheus-scrape-timeout-seconds': '30' },
        };
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', agent: route.agent, ...options }, (res) => {
      res.resume();
      res.once('end', () => resolve(performance.now() - startedAt));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}

const target = await startTarget();
const proxy = await startProxy();
const client = startClient({ proxyUrl: proxy.url, names: ['hops-n'], allowPorts: [target.port] });
const relay = await startBareRelay(target.port, [['hops-b']]);
const bareOnNatprox = forkHelper('floor/bare-client.ts', [
  String(proxy.port),
  String(target.port),
  'hops-bc',
]);
const natproxOnBare = startClient({
  proxyUrl: `http://127.0.0.1:${relay.port}`,
  names: ['hops-nc'],
  allowPorts: [target.port],
});
const route = (key: string, proxyPort: number | undefined, name: string): HopRoute => ({
  key,
  proxyPort,
  name,
  agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
});
const routes = [
  route('direct', undefined, ''),
  route('natprox', proxy.port, 'hops-n'),
  route('bare relay', relay.port, 'hops-b'),
  route('natprox proxy + bare client', proxy.port, 'hops-bc'),
  // The bare proxy does not count a body's length: this client sends the end-of-body trailer.
  route('bare proxy + natprox client', relay.port, 'hops-nc'),
];
try {
  await waitListed(proxy.port, ['hops-n', 'hops-bc'], 15_000);
  // The natprox client on the bare proxy has no /clients page to wait for: retry its route.
  for (let attempt = 0; ; attempt += 1) {
    try {
      await scrape(routes[4] as HopRoute, target.port);
      break;
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  for (const r of routes) for (let i = 0; i < WARM_UP; i += 1) await scrape(r, target.port);
  for (let round = 1; round <= rounds; round += 1) {
    const samples = routes.map((): number[] => []);
    for (let i = 0; i < perRound; i += 1) {
      for (const [k, r] of routes.entries()) samples[k]?.push(await scrape(r, target.port));
    }
    const p50 = samples.map((s) => s.sort((a, b) => a - b)[s.length >> 1] ?? NaN);
    const added = p50.map((ms) => ms - (p50[0] ?? NaN));
    const bare = added[2] ?? NaN;
    const cells = routes.map((r, k) =>
      k === 0
        ? `${r.key} ${p50[0]?.toFixed(3)} ms`
        : `${r.key} +${added[k]?.toFixed(3)} ms (${((added[k] ?? NaN) / bare).toFixed(2)}x)`,
    );
    console.log(`round ${round}, p50: ${cells.join(' | ')}`);
  }
} finally {
  await Promise.all([
    bareOnNatprox.stop(),
    natproxOnBare.stop(),
    client.stop(),
    proxy.stop(3000),
    relay.stop(),
    target.stop(),
  ]);
}
process.exit(0);
