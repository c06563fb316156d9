/**
 * High availability: one client, several proxies (a Prometheus HA pair, each with its own
 * proxy), and proxy replicas behind one name (--connect-all-addresses). Proxies run as real
 * processes where one is SIGKILLed; replicas listen on 127.0.0.1 and 127.0.0.2 (both
 * loopback) with a resolver injected into the client. Run `npm run build` first: the proxy
 * processes run dist/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { NatproxClient, NatproxProxy, type ClientOptions } from '../src/index.js';
import type { BackoffOptions } from '../src/client/backoff.js';
import { resolveClientSettings, type ClientFlags } from '../src/config/client-settings.js';
import { ConfigError } from '../src/errors.js';
import { createClientMetrics } from '../src/observability/client-metrics.js';
import {
  eventually,
  metricValue,
  openScrape,
  readBody,
  scrapeThrough,
  spawnNatprox,
  startTarget,
  within,
  type NatproxProcess,
} from './helpers/loopback.js';
import { createTestCa } from './helpers/tls-fixtures.js';

/** Reconnect delays: 100 ms doubling to 800 ms, ±30 %: the longest wait is 1,040 ms. */
const BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 800, multiplier: 2, jitter: 0.3 };
const LONGEST_BACKOFF_MS = BACKOFF.maxMs * (1 + BACKOFF.jitter);

const metrics: RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('up_metric 1\n');
};

/** `natprox proxy` as a real process on 127.0.0.1 (port 0 picks a free one). */
async function spawnProxy(port = 0): Promise<{ process: NatproxProcess; port: number }> {
  const process = spawnNatprox(
    ['proxy', '--listen', `127.0.0.1:${port}`, '--shutdown-grace', '100ms'],
    after,
  );
  const line = await process.waitFor(/"address":"127\.0\.0\.1:(\d+)"/, 15_000);
  return { process, port: Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(line)?.[1]) };
}

function startHaClient(options: Partial<ClientOptions>): NatproxClient {
  const client = new NatproxClient({ names: ['demo'], allow: [], backoff: BACKOFF, ...options });
  client.start();
  after(() => client.stop(0));
  return client;
}

async function metricsText(registry: Registry): Promise<string> {
  return registry.metrics();
}

/** A scrape through a proxy listening on `host`:`port`; resolves with the status (0: failed). */
async function statusVia(host: string, port: number, targetUrl: string): Promise<number> {
  try {
    const { response } = openScrape({ host, port }, targetUrl);
    const res = await within(response, 5000, `a scrape through ${host}:${port}`);
    await readBody(res);
    return res.statusCode ?? 0;
  } catch {
    return 0;
  }
}

describe('one client, two proxies (an HA pair)', () => {
  it('a SIGKILLed proxy costs no scrape through the other; it comes back and the client reconnects within its backoff', async () => {
    const target = await startTarget(metrics, after);
    const first = await spawnProxy();
    const second = await spawnProxy();
    const client = startHaClient({
      proxies: [
        { url: new URL(`http://127.0.0.1:${first.port}`) },
        { url: new URL(`http://127.0.0.1:${second.port}`) },
      ],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const registry = createClientMetrics(client.events);
    await client.waitAllConnected(10_000);
    assert.equal(client.tunnels.length, 2);
    const firstLabel = `127.0.0.1:${first.port}`;
    const secondLabel = `127.0.0.1:${second.port}`;
    let text = await metricsText(registry);
    assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: firstLabel }), 1);
    assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: secondLabel }), 1);

    // A scraper on each proxy; the first proxy is killed a third of the way through.
    const url = `http://demo:${target.port}/metrics`;
    const total = 150;
    const killAt = 50;
    const statusesViaSecond: number[] = [];
    const statusesViaFirst: number[] = [];
    let killed = false;
    // Resolves with the error that ended the first scraper's loop (its proxy dying).
    const viaFirst = (async () => {
      while (!killed) statusesViaFirst.push((await scrapeThrough(first.port, url)).status);
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    for (let i = 0; i < total; i += 1) {
      if (i === killAt) {
        first.process.child.kill('SIGKILL');
        killed = true;
      }
      statusesViaSecond.push(await statusVia('127.0.0.1', second.port, url));
    }
    // The first scraper saw its proxy die: its loop ends with a refused connection.
    const ended = await within(viaFirst, 10_000, 'the scraper of the killed proxy');
    assert.ok(ended === undefined || ended instanceof Error);
    await first.process.exited;
    assert.ok(statusesViaFirst.length > 0, 'the first proxy served scrapes before the kill');
    assert.deepEqual(
      statusesViaSecond.filter((status) => status !== 200),
      [],
      'every scrape through the surviving proxy succeeded',
    );
    assert.equal(statusesViaSecond.length, total);

    await eventually(
      () =>
        client.tunnels.some((t) => t.tunnel.proxy === firstLabel && t.state.state !== 'connected'),
      5000,
      'the client to see the first tunnel drop',
    );
    assert.equal(client.state.state, 'connected', 'the client as a whole stays connected');
    text = await metricsText(registry);
    assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: firstLabel }), 0);
    assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: secondLabel }), 1);

    // Let the backoff grow to its cap, then bring the proxy back on the same port.
    await eventually(
      () =>
        client.tunnels.some(
          (t) =>
            t.tunnel.proxy === firstLabel &&
            t.state.state === 'reconnecting' &&
            t.state.attempt >= 5,
        ),
      10_000,
      'several failed reconnect attempts',
    );
    const restarted = await spawnProxy(first.port);
    const back = Date.now();
    await client.waitAllConnected(LONGEST_BACKOFF_MS + 2000);
    const reconnectMs = Date.now() - back;
    assert.ok(
      reconnectMs <= LONGEST_BACKOFF_MS + 1000,
      `reconnected ${reconnectMs} ms after the proxy came back; the longest backoff is ${LONGEST_BACKOFF_MS} ms`,
    );
    assert.equal((await scrapeThrough(restarted.port, url)).status, 200);
    text = await metricsText(registry);
    assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: firstLabel }), 1);
    assert.equal(
      metricValue(text, 'natprox_client_tunnel_connects_total', { proxy: firstLabel }),
      2,
    );
    assert.equal(
      metricValue(text, 'natprox_client_tunnel_connects_total', { proxy: secondLabel }),
      1,
    );
  });
});

describe('--connect-all-addresses: proxy replicas behind one name', () => {
  const HOST = 'replicas.natprox.test';

  /** An in-process proxy on `host`:`port`. */
  async function startReplica(host: string, port: number): Promise<NatproxProxy> {
    const proxy = new NatproxProxy({
      listen: { host, port },
      defaultScrapeTimeoutMs: 5000,
      maxScrapeTimeoutMs: 60_000,
    });
    await proxy.listen();
    after(() => proxy.shutdown(0));
    return proxy;
  }

  /** Two replicas on the same port at 127.0.0.1 and 127.0.0.2. */
  async function startReplicas(): Promise<{ port: number; replicas: NatproxProxy[] }> {
    for (let attempt = 0; ; attempt += 1) {
      const second = await startReplica('127.0.0.2', 0);
      const { port } = second.address();
      try {
        const first = await startReplica('127.0.0.1', port);
        return { port, replicas: [first, second] };
      } catch (err) {
        await second.shutdown(0);
        if (attempt >= 5) throw err; // that port was taken on 127.0.0.1 each time
      }
    }
  }

  it('one tunnel per address; a scrape through either replica works; one replica stopping leaves the other serving; DNS changes add and remove tunnels', async () => {
    const target = await startTarget(metrics, after);
    const { port, replicas } = await startReplicas();
    let addresses: string[] | Error = ['127.0.0.2', '127.0.0.1'];
    const asked: string[] = [];
    const client = startHaClient({
      proxyUrl: new URL(`http://${HOST}:${port}`),
      allow: [{ host: '127.0.0.1', port: target.port }],
      connectAllAddresses: true,
      reresolveIntervalMs: 50,
      resolveHost: async (host) => {
        asked.push(host);
        if (addresses instanceof Error) throw addresses;
        return addresses;
      },
    });
    const registry = createClientMetrics(client.events);
    await client.waitAllConnected(10_000);
    assert.equal(asked[0], HOST);
    const label = `${HOST}:${port}`;
    assert.deepEqual(
      client.tunnels
        .map((t) => t.tunnel)
        .sort((a, b) => (a.address ?? '').localeCompare(b.address ?? '')),
      [
        { proxy: label, address: '127.0.0.1' },
        { proxy: label, address: '127.0.0.2' },
      ],
    );
    let text = await metricsText(registry);
    for (const address of ['127.0.0.1', '127.0.0.2']) {
      assert.equal(metricValue(text, 'natprox_client_tunnel_up', { proxy: label, address }), 1);
    }
    // Each replica has its own session with the client, registered under the host name.
    for (const replica of replicas) assert.equal(replica.registry.size, 1);

    const url = `http://demo:${target.port}/metrics`;
    assert.equal(await statusVia('127.0.0.1', port, url), 200);
    assert.equal(await statusVia('127.0.0.2', port, url), 200);

    // One replica goes away: the other keeps serving.
    await (replicas[1] as NatproxProxy).shutdown(0);
    await eventually(
      () =>
        client.tunnels.some(
          (t) => t.tunnel.address === '127.0.0.2' && t.state.state !== 'connected',
        ),
      5000,
      'the tunnel to 127.0.0.2 to drop',
    );
    for (let i = 0; i < 20; i += 1) assert.equal(await statusVia('127.0.0.1', port, url), 200);
    assert.equal(client.state.state, 'connected');

    // The address leaves DNS: its tunnel is removed, with its metrics series.
    addresses = ['127.0.0.1'];
    await eventually(() => client.tunnels.length === 1, 5000, 'the tunnel to 127.0.0.2 to go');
    assert.equal(client.tunnels[0]?.tunnel.address, '127.0.0.1');
    text = await metricsText(registry);
    assert.equal(
      metricValue(text, 'natprox_client_tunnel_up', { proxy: label, address: '127.0.0.2' }),
      undefined,
    );

    // A resolver failure changes nothing.
    addresses = new Error('SERVFAIL');
    const before = asked.length;
    await eventually(() => asked.length >= before + 2, 5000, 'two failed resolutions');
    assert.equal(client.tunnels.length, 1);
    assert.equal(await statusVia('127.0.0.1', port, url), 200);

    // A replica appears at a new address: a tunnel is added and serves.
    await startReplica('127.0.0.2', port);
    addresses = ['127.0.0.1', '127.0.0.2'];
    await eventually(() => client.tunnels.length === 2, 5000, 'a tunnel to 127.0.0.2 again');
    await client.waitAllConnected(5000);
    assert.equal(await statusVia('127.0.0.2', port, url), 200);
  });

  it('with https, each address is checked against the host NAME (SNI and certificate)', async () => {
    const ca = createTestCa('ha-ca');
    after(() => ca.remove());
    const target = await startTarget(metrics, after);
    const good = ca.issue('replica', [HOST]);
    const proxy = new NatproxProxy({
      listen: { host: '127.0.0.2', port: 0 },
      defaultScrapeTimeoutMs: 5000,
      maxScrapeTimeoutMs: 60_000,
      tls: { cert: good.cert, key: good.key },
    });
    const { port } = await proxy.listen();
    after(() => proxy.shutdown(0));
    const client = startHaClient({
      proxyUrl: new URL(`https://${HOST}:${port}`),
      tls: { ca: ca.cert },
      allow: [{ host: '127.0.0.1', port: target.port }],
      connectAllAddresses: true,
      resolveHost: async () => ['127.0.0.2'],
    });
    // The certificate names only HOST (no IP): verified, it was checked against the name.
    await client.waitAllConnected(10_000);
    assert.equal(proxy.registry.size, 1);

    // A certificate for the address but not the name is refused.
    const wrong = ca.issue('by-address', ['127.0.0.3']);
    const impostor = new NatproxProxy({
      listen: { host: '127.0.0.3', port: 0 },
      defaultScrapeTimeoutMs: 5000,
      maxScrapeTimeoutMs: 60_000,
      tls: { cert: wrong.cert, key: wrong.key },
    });
    const impostorPort = (await impostor.listen()).port;
    after(() => impostor.shutdown(0));
    const refused = startHaClient({
      proxyUrl: new URL(`https://${HOST}:${impostorPort}`),
      tls: { ca: ca.cert },
      allow: [{ host: '127.0.0.1', port: target.port }],
      connectAllAddresses: true,
      resolveHost: async () => ['127.0.0.3'],
    });
    const reason = await new Promise<string>((resolve) => {
      refused.events.on('state', (state) => {
        if (state.state === 'reconnecting') resolve(state.lastError);
      });
    });
    assert.match(reason, /ERR_TLS_CERT_ALTNAME_INVALID|does not match|altnames/i);
    assert.equal(impostor.registry.size, 0);
  });
});

describe('several proxies: the PushProx transport', () => {
  it('polls each PushProx proxy independently; a scrape through either is served', async () => {
    const target = await startTarget(metrics, after);
    const proxies = await Promise.all(
      [0, 1].map(async () => {
        const proxy = new NatproxProxy({
          listen: { host: '127.0.0.1', port: 0 },
          defaultScrapeTimeoutMs: 5000,
          maxScrapeTimeoutMs: 60_000,
        });
        const { port } = await proxy.listen();
        after(() => proxy.shutdown(0));
        return port;
      }),
    );
    const client = startHaClient({
      transport: 'pushprox',
      names: ['node-a'],
      pollAcceptedAfterMs: 50,
      proxies: proxies.map((port) => ({ url: new URL(`http://127.0.0.1:${port}`) })),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    await client.waitAllConnected(10_000);
    assert.equal(client.tunnels.length, 2);
    for (const port of proxies) {
      const result = await within(
        scrapeThrough(port, `http://node-a:${target.port}/metrics`),
        5000,
        `a scrape through the PushProx endpoint on ${port}`,
      );
      assert.equal(result.status, 200, result.body);
      assert.equal(result.body, 'up_metric 1\n');
    }
  });

  it('--connect-all-addresses with the PushProx transport is refused, naming the field', () => {
    assert.throws(
      () =>
        resolveClientSettings({
          'proxy-url': 'http://127.0.0.1:1',
          transport: 'pushprox',
          'connect-all-addresses': true,
          name: ['a'],
          allow: ['9100'],
        }),
      (err: Error) => err instanceof ConfigError && /^--connect-all-addresses: /.test(err.message),
    );
  });
});

describe('configuration of several proxies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natprox-ha-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let counter = 0;
  const write = (text: string): string => {
    counter += 1;
    const file = join(dir, `file-${counter}`);
    writeFileSync(file, text);
    return file;
  };
  const ca = createTestCa('ha-config-ca');
  after(() => ca.remove());
  const pin = 'ab'.repeat(32);
  const errorOf = (flags: ClientFlags): string => {
    try {
      resolveClientSettings(flags);
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    assert.fail('expected a ConfigError');
  };

  it('the list form: each proxy with its own token and CA (or pin); the top-level ones as defaults', () => {
    const tokenA = write('token-a\n');
    const tokenTop = write('token-top\n');
    const config = write(`
proxies:
  - url: https://prom-a.example:8443
    token_file: ${tokenA}
    ca_file: ${ca.certFile}
  - url: https://prom-b.example:8443/natprox
    tls_fingerprint: "${pin}"
  - url: http://127.0.0.1:8080
token_file: ${tokenTop}
connect_all_addresses: true
allow: [9100]
names: [home]
`);
    const { client } = resolveClientSettings({ config });
    assert.equal(client.proxyUrl, undefined);
    assert.equal(client.connectAllAddresses, true);
    assert.deepEqual(
      client.proxies?.map((p) => ({ url: p.url.href, token: p.token, pin: p.tls?.pinSha256 })),
      [
        { url: 'https://prom-a.example:8443/', token: 'token-a', pin: undefined },
        { url: 'https://prom-b.example:8443/natprox', token: 'token-top', pin },
        { url: 'http://127.0.0.1:8080/', token: 'token-top', pin: undefined },
      ],
    );
    assert.deepEqual(client.proxies?.[0]?.tls?.ca, ca.cert);
    assert.equal(client.proxies?.[2]?.tls, undefined);
  });

  it("the flag form: repeated --proxy-url share --token-file; they replace the file's proxies", () => {
    const token = write('shared\n');
    const config = write('proxy_url: http://file.example:8080\nallow: [9100]\nnames: [home]\n');
    const { client } = resolveClientSettings({
      config,
      'proxy-url': ['http://a.example:8080', 'http://b.example:8080'],
      'token-file': token,
      'connect-all-addresses': true,
    });
    assert.deepEqual(
      client.proxies?.map((p) => [p.url.href, p.token]),
      [
        ['http://a.example:8080/', 'shared'],
        ['http://b.example:8080/', 'shared'],
      ],
    );
    assert.equal(client.connectAllAddresses, true);
    // One --proxy-url keeps the single-proxy form.
    const single = resolveClientSettings({ 'proxy-url': ['http://a.example:8080'], allow: ['1'] });
    assert.equal(single.client.proxyUrl?.href, 'http://a.example:8080/');
    assert.equal(single.client.proxies, undefined);
  });

  it('errors name the field', () => {
    const both = write(
      'proxy_url: http://a.example\nproxies: [{url: http://b.example}]\nallow: [1]\n',
    );
    assert.match(
      errorOf({ config: both }),
      new RegExp(`^${both}: proxy_url and proxies: give either`),
    );
    const badUrl = write('proxies: [{url: http://a.example}, {url: "ftp://b"}]\nallow: [1]\n');
    assert.equal(
      errorOf({ config: badUrl }),
      `${badUrl}: proxies[1].url: expected an http:// or https:// URL, got ftp://`,
    );
    const missingToken = write(
      `proxies: [{url: http://a.example, token_file: ${join(dir, 'nope')}}]\nallow: [1]\n`,
    );
    assert.match(
      errorOf({ config: missingToken }),
      new RegExp(`^${missingToken}: proxies\\[0\\]\\.token_file: cannot read the token file`),
    );
    const caOnHttp = write(
      `proxies: [{url: http://a.example, ca_file: ${ca.certFile}}]\nallow: [1]\n`,
    );
    assert.match(
      errorOf({ config: caOnHttp }),
      new RegExp(`^${caOnHttp}: proxies\\[0\\]\\.ca_file: .*apply to https://`),
    );
    const unknownKey = write('proxies: [{url: http://a.example, tokenfile: x}]\nallow: [1]\n');
    assert.match(errorOf({ config: unknownKey }), /proxies\[0\]/);
    const empty = write('proxies: []\nallow: [1]\n');
    assert.match(errorOf({ config: empty }), /proxies: expected at least one proxy/);
    assert.match(
      errorOf({ 'proxy-url': ['http://a.example:1', 'http://a.example:1/'], allow: ['1'] }),
      /^--proxy-url: http:\/\/a\.example:1\/ is listed twice/,
    );
    const notBool = write(
      'proxy_url: http://a.example\nconnect_all_addresses: yes please\nallow: [1]\n',
    );
    assert.match(errorOf({ config: notBool }), /connect_all_addresses: expected true or false/);
  });
});
