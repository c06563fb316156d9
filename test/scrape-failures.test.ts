/**
 * The failure table (docs/design.md, README "What a scrape can end with"): every way a scrape can end gives the
 * scraper the documented status, a body that says what went wrong, at the documented speed,
 * and is counted by outcome in the proxy's /metrics.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { sha256Hex } from '../src/auth/secret-hash.js';
import type { NatproxClient } from '../src/index.js';
import {
  deadPort,
  eventually,
  getOrigin,
  metricValue,
  openScrape,
  scrapeThrough,
  startClient,
  startProxy,
  startRelay,
  startTarget,
  within,
  type Relay,
} from './helpers/loopback.js';

/** natprox_scrapes_total{outcome} as the proxy's /metrics serves it. */
async function outcomeCount(
  proxyPort: number,
  outcome: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await getOrigin(proxyPort, '/metrics', headers);
  assert.equal(res.status, 200, `GET /metrics: ${res.body}`);
  return metricValue(res.body, 'natprox_scrapes_total', { outcome }) ?? 0;
}

/** Waits until the outcome counter has grown by `by` over `before`. */
async function expectCounted(
  proxyPort: number,
  outcome: string,
  before: number,
  by = 1,
  headers: Record<string, string> = {},
): Promise<void> {
  let seen = before;
  await eventually(
    async () => {
      seen = await outcomeCount(proxyPort, outcome, headers);
      return seen >= before + by;
    },
    2000,
    `natprox_scrapes_total{outcome="${outcome}"} to reach ${before + by}`,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last seen ${seen})`);
  });
  assert.equal(seen, before + by, `natprox_scrapes_total{outcome="${outcome}"}`);
}

/** A target that takes requests and never answers; resolves `arrived` for each request. */
function holdingTarget() {
  const held: ServerResponse[] = [];
  let onArrive: (res: ServerResponse) => void = () => {};
  const handler = (_req: unknown, res: ServerResponse): void => {
    held.push(res);
    onArrive(res);
  };
  const nextArrival = (): Promise<ServerResponse> =>
    new Promise((resolve) => {
      onArrive = resolve;
    });
  return { held, handler, nextArrival };
}

/**
 * "At once" without a wall-clock bound that load can break: these scrapes carry a 30 s
 * deadline, so an answer that waited for it (or for any timer of that order) misses a 10 s
 * wait by far, while a loaded machine's delays stay far below 10 s.
 */
const LONG_DEADLINE = { 'x-prometheus-scrape-timeout-seconds': '30' } as const;
const AT_ONCE_MS = 10_000;

const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('scrape failures (the failure table)', () => {
  it('unknown name: 503 at once, the body names the name', async () => {
    const target = await startTarget((_req, res) => res.end('ok'), after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const before = await outcomeCount(port, 'no_client');

    const result = await within(
      scrapeThrough(port, `http://no-such-client:${target.port}/metrics`, LONG_DEADLINE),
      AT_ONCE_MS,
      'the 503 (a scrape with a 30 s deadline)',
    );

    assert.equal(result.status, 503);
    assert.match(result.body, /"no-such-client"/);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_NO_CLIENT');
    await expectCounted(port, 'no_client', before);
  });

  it('scraper credentials missing or wrong: 407 with Proxy-Authenticate; right Basic and Bearer: 200', async () => {
    let reached = 0;
    const target = await startTarget((_req, res) => {
      reached += 1;
      res.end('scraped');
    }, after);
    const { port, url } = await startProxy(after, {
      scrapers: [
        { username: 'prometheus', passwordSha256: sha256Hex('s3cret') },
        { bearerSha256: sha256Hex('the-bearer-token') },
      ],
    });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    // The operator interface falls back to the scraper credentials.
    const operator = { authorization: basic('prometheus', 's3cret') };
    const unauthorizedBefore = await outcomeCount(port, 'unauthorized', operator);
    const okBefore = await outcomeCount(port, 'ok', operator);
    const scrapeUrl = `http://demo:${target.port}/metrics`;

    const wrong: Array<[string, Record<string, string>]> = [
      ['no credentials', {}],
      ['wrong password', { 'proxy-authorization': basic('prometheus', 'wrong') }],
      ['unknown user', { 'proxy-authorization': basic('someone', 's3cret') }],
      ['wrong bearer token', { 'proxy-authorization': 'Bearer not-the-token' }],
      ['credentials in Authorization instead', { authorization: basic('prometheus', 's3cret') }],
      ['unknown scheme', { 'proxy-authorization': 'Digest username="prometheus"' }],
    ];
    for (const [what, headers] of wrong) {
      const result = await within(
        scrapeThrough(port, scrapeUrl, { ...LONG_DEADLINE, ...headers }),
        AT_ONCE_MS,
        `${what}: the 407 (a scrape with a 30 s deadline)`,
      );
      assert.equal(result.status, 407, `${what}: status`);
      assert.match(
        String(result.headers['proxy-authenticate']),
        /^Basic realm=/,
        `${what}: Proxy-Authenticate`,
      );
      assert.equal(result.headers['x-natprox-error'], 'NATPROX_UNAUTHORIZED', `${what}: code`);
      assert.match(result.body, /scraper credentials/, `${what}: body`);
    }
    assert.equal(reached, 0, 'a scrape without the right credentials reached the target');

    const withBasic = await scrapeThrough(port, scrapeUrl, {
      'proxy-authorization': basic('prometheus', 's3cret'),
    });
    assert.equal(withBasic.status, 200, withBasic.body);
    assert.equal(withBasic.body, 'scraped');
    const withBearer = await scrapeThrough(port, scrapeUrl, {
      'proxy-authorization': 'Bearer the-bearer-token',
    });
    assert.equal(withBearer.status, 200, withBearer.body);
    assert.equal(withBearer.body, 'scraped');
    assert.equal(reached, 2);

    await expectCounted(port, 'unauthorized', unauthorizedBefore, wrong.length, operator);
    await expectCounted(port, 'ok', okBefore, 2, operator);
  });

  it('target port not on the allowlist: 403, the body names the port', async () => {
    const allowed = await startTarget((_req, res) => res.end('ok'), after);
    let reachedForbidden = false;
    const forbidden = await startTarget((_req, res) => {
      reachedForbidden = true;
      res.end('must not be reached');
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: allowed.port }],
    });
    const before = await outcomeCount(port, 'forbidden');

    const result = await scrapeThrough(port, `http://demo:${forbidden.port}/metrics`);

    assert.equal(result.status, 403);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_TARGET_FORBIDDEN');
    assert.match(
      result.body,
      new RegExp(`port ${forbidden.port} is not on this client's allowlist`),
    );
    assert.equal(reachedForbidden, false, 'the client fetched a target that is not allowed');
    await expectCounted(port, 'forbidden', before);
  });

  it('target path outside the allowed prefixes: 403, the body names the path', async () => {
    let reached = false;
    const target = await startTarget((_req, res) => {
      reached = true;
      res.end('must not be reached');
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port, pathPrefixes: ['/metrics'] }],
    });

    const result = await scrapeThrough(port, `http://demo:${target.port}/debug/pprof`);

    assert.equal(result.status, 403);
    assert.match(result.body, /"\/debug\/pprof"/);
    assert.equal(reached, false, 'the client fetched a path that is not allowed');
  });

  it('a refusal the client makes is counted alike by the proxy and the client (a bad _scheme: 400, bad_request)', async () => {
    let reached = false;
    const target = await startTarget((_req, res) => {
      reached = true;
      res.end('must not be reached');
    }, after);
    const { proxy, port, url } = await startProxy(after);
    const client = await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const atProxy: string[] = [];
    const atClient: string[] = [];
    proxy.events.on('scrapeFinished', (info) => atProxy.push(`${info.status} ${info.outcome}`));
    client.events.on('scrapeServed', (info) => atClient.push(`${info.status} ${info.outcome}`));

    const result = await scrapeThrough(port, `http://demo:${target.port}/metrics?_scheme=ftp`);

    assert.equal(result.status, 400);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_BAD_REQUEST');
    assert.match(result.body, /_scheme must be http or https/);
    assert.equal(reached, false, 'the target was reached');
    await eventually(() => atProxy.length === 1 && atClient.length === 1, 2000, 'both to report');
    assert.deepEqual(atProxy, ['400 bad_request']);
    assert.deepEqual(atClient, atProxy, 'the client counts it as the proxy does');
  });

  it('target refuses connections: 502, the body carries ECONNREFUSED', async () => {
    const dead = await deadPort();
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: dead }],
    });
    const before = await outcomeCount(port, 'target_error');

    const result = await within(
      scrapeThrough(port, `http://demo:${dead}/metrics`, LONG_DEADLINE),
      AT_ONCE_MS,
      'the 502 (a scrape with a 30 s deadline)',
    );

    assert.equal(result.status, 502);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_TARGET_FAILED');
    assert.match(result.body, /ECONNREFUSED/);
    assert.match(result.body, new RegExp(`127\\.0\\.0\\.1:${dead}/metrics`));
    await expectCounted(port, 'target_error', before);
  });

  it('target never answers: 504 at the deadline from X-Prometheus-Scrape-Timeout-Seconds', async () => {
    const holding = holdingTarget();
    const target = await startTarget(holding.handler, after);
    // Without the header the deadline would be 30 s: the 504 within 10 s comes from the header.
    const { port, url } = await startProxy(after, { defaultScrapeTimeoutMs: 30_000 });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const before = await outcomeCount(port, 'timeout');

    const started = performance.now();
    const result = await within(
      scrapeThrough(port, `http://demo:${target.port}/metrics`, {
        'x-prometheus-scrape-timeout-seconds': '0.5',
      }),
      AT_ONCE_MS,
      'the 504 at the 0.5 s deadline (the default is 30 s)',
    );
    const elapsedMs = performance.now() - started;

    assert.equal(result.status, 504, result.body);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_SCRAPE_TIMEOUT');
    assert.match(result.body, /within 500 ms/);
    // Load only delays timers: not before the deadline.
    assert.ok(elapsedMs >= 400, `504 after ${elapsedMs.toFixed(0)} ms, before the 500 ms deadline`);
    assert.equal(holding.held.length, 1, 'the target saw the request');
    await expectCounted(port, 'timeout', before);
    // The local fetch was given up too.
    const held = holding.held[0] as ServerResponse;
    await eventually(() => held.destroyed, 2000, "the target's request to be closed");
  });

  /**
   * Starts a scrape that the target holds (no response head yet), runs `lose` to take the
   * client's connection away, and checks the scraper gets 502 NATPROX_CLIENT_LOST at once.
   */
  async function expectClientLost(
    lose: (parts: { client: NatproxClient; relay: Relay }) => unknown,
  ): Promise<void> {
    const holding = holdingTarget();
    const target = await startTarget(holding.handler, after);
    const { port } = await startProxy(after);
    // The client reaches the proxy through a relay, so the test can cut the connection.
    const relay = await startRelay({ port }, after);
    const client = await startClient(after, {
      proxyUrl: new URL(`http://127.0.0.1:${relay.port}`),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const before = await outcomeCount(port, 'client_lost');

    const arrived = holding.nextArrival();
    const scrape = scrapeThrough(port, `http://demo:${target.port}/metrics`, LONG_DEADLINE);
    const held = await within(arrived, 2000, 'the scrape to reach the target');
    const started = performance.now();
    await lose({ client, relay });
    const result = await within(
      scrape,
      AT_ONCE_MS,
      'the scrape to end after the client went away (its deadline is 30 s)',
    );
    const elapsedMs = performance.now() - started;

    assert.equal(
      result.status,
      502,
      `${result.status} after ${elapsedMs.toFixed(0)} ms: ${result.body}`,
    );
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_CLIENT_LOST', result.body);
    // "client connection lost mid-scrape: ..." or "client reset the stream ...".
    assert.match(result.body, /natprox: client /);
    await expectCounted(port, 'client_lost', before);
    // The client's local fetch does not outlive the tunnel either.
    await eventually(() => held.destroyed, 2000, "the target's request to be closed");
  }

  it('client connection lost mid-scrape (client stops): 502 as soon as the loss is seen', async () => {
    await expectClientLost(({ client }) => client.stop(0));
  });

  it('client connection lost mid-scrape (connection closed, as when the client process dies): 502 at once', async () => {
    await expectClientLost(({ relay }) => relay.cut('close'));
  });

  it('client connection lost mid-scrape (connection reset): 502 at once', async () => {
    await expectClientLost(({ relay }) => relay.cut('reset'));
  });

  it('scraper closes its request mid-scrape: the local fetch is aborted at once', async () => {
    const holding = holdingTarget();
    const target = await startTarget(holding.handler, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const before = await outcomeCount(port, 'cancelled');

    const arrived = holding.nextArrival();
    const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`, {
      'x-prometheus-scrape-timeout-seconds': '30',
    });
    const held = await within(arrived, 2000, 'the scrape to reach the target');
    // Mid-body: the target has sent its head and a first chunk, then holds the rest.
    held.writeHead(200, { 'content-type': 'text/plain' });
    held.write('# first part of the body\n');
    const res = await within(scrape.response, 2000, 'the response head');
    assert.equal(res.statusCode, 200);
    const firstChunk = await within(
      new Promise<Buffer>((resolve) => res.once('data', resolve)),
      2000,
      'the first chunk',
    );
    assert.equal(firstChunk.toString(), '# first part of the body\n');

    const targetClosed = new Promise<void>((resolve) => held.once('close', () => resolve()));
    scrape.req.destroy();
    await within(
      targetClosed,
      AT_ONCE_MS,
      "the target's request to see 'close' (the scrape's deadline is 30 s)",
    );

    assert.equal(held.writableFinished, false, 'the target had not finished its response');
    await expectCounted(port, 'cancelled', before);
  });

  it('scraper closes its request before the head arrives: the local fetch is aborted too', async () => {
    const holding = holdingTarget();
    const target = await startTarget(holding.handler, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const before = await outcomeCount(port, 'cancelled');

    const arrived = holding.nextArrival();
    const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`, {
      'x-prometheus-scrape-timeout-seconds': '30',
    });
    const held = await within(arrived, 2000, 'the scrape to reach the target');
    const targetClosed = new Promise<void>((resolve) => held.once('close', () => resolve()));
    scrape.req.destroy();
    await within(
      targetClosed,
      AT_ONCE_MS,
      "the target's request to see 'close' (the scrape's deadline is 30 s)",
    );
    await expectCounted(port, 'cancelled', before);
  });
});
