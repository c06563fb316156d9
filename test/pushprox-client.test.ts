/**
 * Direction 2: `natprox client --transport pushprox` against a PushProx proxy. The proxy
 * here is a test peer that behaves as PushProx's Go proxy on the wire
 * (test/helpers/pushprox-peers.ts), including its 408 for an older waiting poll.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NatproxClient, type ClientOptions } from '../src/index.js';
import type { ConnectionState } from '../src/client/client-events.js';
import {
  deadPort,
  eventually,
  openScrape,
  scrapeThrough,
  spawnNatprox,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { FakePushProxProxy } from './helpers/pushprox-peers.js';

const FAST_BACKOFF = { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 };

async function startFakeProxy(): Promise<FakePushProxProxy> {
  const fake = new FakePushProxProxy();
  await fake.listen(after);
  return fake;
}

function startPushProxClient(
  fake: { port: number },
  name: string,
  allow: ClientOptions['allow'],
  extra: Partial<ClientOptions> = {},
): NatproxClient {
  const client = new NatproxClient({
    proxyUrl: new URL(`http://127.0.0.1:${fake.port}/`),
    names: [name],
    allow,
    transport: 'pushprox',
    backoff: FAST_BACKOFF,
    pollAcceptedAfterMs: 50,
    ...extra,
  });
  client.start();
  after(() => client.stop(0));
  return client;
}

describe('natprox client --transport pushprox against a PushProx proxy', () => {
  it('serves a scrape; the push is a Response.Write serialisation with Id and the remaining time', async () => {
    const target = await startTarget((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.write('part1 ');
      res.end(`for ${req.url}\n`);
    }, after);
    const fake = await startFakeProxy();
    const client = startPushProxClient(fake, 'node-a', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.livePolls('node-a') === 1, 5000, 'a waiting poll');
    await client.waitConnected(5000);
    const result = await within(
      scrapeThrough(fake.port, `http://node-a:${target.port}/metrics?x=1`, {
        'x-prometheus-scrape-timeout-seconds': '5',
      }),
      5000,
      'the scrape',
    );
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'part1 for /metrics?x=1\n');
    const push = fake.pushes[0];
    assert.ok(push);
    assert.equal(push.startLine, 'HTTP/1.1 200 OK');
    const id = /\r\nId: ([0-9a-f-]{36})\r\n/.exec(fake.handedOut[0] ?? '')?.[1];
    assert.equal(push.headers.id, id);
    assert.ok(Number(push.headers['x-prometheus-scrape-timeout']) > 0);
    assert.match(push.headers['x-prometheus-scrape-timeout'] ?? '', /^\d+\.\d{6}$/);
    assert.equal(
      push.headers['transfer-encoding'],
      'chunked',
      'a body of unknown length streams chunked',
    );
    const names = push.headerLines.map((line) => line.slice(0, line.indexOf(':')));
    assert.deepEqual(names, [...names].sort(), 'headers sorted as Go writes them');
    assert.equal(fake.expired, 0, 'no poll was knocked out');
    assert.equal(fake.maxLivePolls, 1, 'exactly one poll outstanding');
  });

  it('target down: the pushed answer is 502 with the cause; not allowlisted: 403', async () => {
    const fake = await startFakeProxy();
    const down = await deadPort();
    startPushProxClient(fake, 'node-b', [{ host: '127.0.0.1', port: down }]);
    await eventually(() => fake.livePolls('node-b') === 1, 5000, 'a waiting poll');
    const result = await within(
      scrapeThrough(fake.port, `http://node-b:${down}/metrics`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 502, result.body);
    assert.match(result.body, /ECONNREFUSED/);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_TARGET_FAILED');
    const forbidden = await within(
      scrapeThrough(fake.port, 'http://node-b:1/metrics'),
      5000,
      'scrape',
    );
    assert.equal(forbidden.status, 403, forbidden.body);
    assert.match(forbidden.body, /not on this client's allowlist/);
  });

  it('timeout: the local fetch stops at the deadline and 504 is pushed', async () => {
    const target = await startTarget((_req, res) => {
      setTimeout(() => res.end('late\n'), 3000).unref();
    }, after);
    const fake = await startFakeProxy();
    startPushProxClient(fake, 'node-c', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.livePolls('node-c') === 1, 5000, 'a waiting poll');
    const result = await within(
      scrapeThrough(fake.port, `http://node-c:${target.port}/m`, {
        'x-prometheus-scrape-timeout-seconds': '0.3',
      }),
      5000,
      'scrape',
    );
    // Whichever is first: the client's 504 push or the fake proxy's own timeout (500). The
    // pushed 504 below is the proof: a client that waited for the target would push its 200.
    assert.ok([504, 500].includes(result.status), `${result.status} ${result.body}`);
    await eventually(() => fake.pushes.length === 1, 5000, 'the push');
    assert.match(fake.pushes[0]?.startLine ?? '', /^HTTP\/1\.1 504 /);
  });

  it('cancelled scrape: the late push is refused by the proxy, the client carries on', async () => {
    let release: (() => void) | undefined;
    const target = await startTarget((req, res) => {
      if (req.url === '/hold') release = () => res.end('held\n');
      else res.end('fresh\n');
    }, after);
    const fake = await startFakeProxy();
    startPushProxClient(fake, 'node-d', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.livePolls('node-d') === 1, 5000, 'a waiting poll');
    const open = openScrape({ port: fake.port }, `http://node-d:${target.port}/hold`);
    await eventually(() => release !== undefined, 5000, 'the target to get it');
    open.req.destroy();
    release?.();
    await eventually(() => fake.pushes.length === 1, 5000, 'the late push');
    const next = await within(
      scrapeThrough(fake.port, `http://node-d:${target.port}/n`),
      5000,
      'next',
    );
    assert.equal(next.status, 200);
    assert.equal(next.body, 'fresh\n');
  });

  it('client restart: the new client polls and is served', async () => {
    const target = await startTarget((_req, res) => res.end('ok\n'), after);
    const fake = await startFakeProxy();
    const first = startPushProxClient(fake, 'node-e', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.livePolls('node-e') === 1, 5000, 'first poll');
    await first.stop(0);
    assert.equal(first.state.state, 'closed');
    await eventually(() => fake.livePolls('node-e') === 0, 5000, 'the poll to close');
    startPushProxClient(fake, 'node-e', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.pollsSeen >= 2, 5000, 'second poll');
    const result = await within(
      scrapeThrough(fake.port, `http://node-e:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200, result.body);
  });

  it('a poll cut off with an HTML 504 is logged with its status and retried, never parsed', async () => {
    const target = await startTarget((_req, res) => res.end('after cut\n'), after);
    const fake = await startFakeProxy();
    const client = startPushProxClient(fake, 'node-f', [{ host: '127.0.0.1', port: target.port }]);
    const states: ConnectionState[] = [];
    client.events.on('state', (state) => states.push(state));
    await eventually(() => fake.livePolls('node-f') === 1, 5000, 'a waiting poll');
    assert.equal(fake.cutWaitingPolls('node-f'), 1);
    await eventually(
      () => states.some((s) => s.state === 'reconnecting'),
      5000,
      'the client to see it',
    );
    const down = states.find((s) => s.state === 'reconnecting');
    assert.ok(down && down.state === 'reconnecting');
    assert.match(down.lastError, /HTTP 504/);
    assert.match(down.lastError, /text\/html/);
    // The re-poll expires the stale one inside the proxy (PushProx's 408), then is served.
    await eventually(
      () => fake.livePolls('node-f') === 1 && fake.expired === 1,
      5000,
      'the re-poll',
    );
    const result = await within(
      scrapeThrough(fake.port, `http://node-f:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'after cut\n');
  });

  it('100 concurrent scrapes with exactly one poll outstanding', async () => {
    const target = await startTarget((req, res) => {
      res.setHeader('content-length', Buffer.byteLength(`b ${req.url}\n`));
      res.end(`b ${req.url}\n`);
    }, after);
    const fake = await startFakeProxy();
    startPushProxClient(fake, 'node-g', [{ host: '127.0.0.1', port: target.port }]);
    await eventually(() => fake.livePolls('node-g') === 1, 5000, 'a waiting poll');
    const results = await within(
      Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          scrapeThrough(fake.port, `http://node-g:${target.port}/m${i}`),
        ),
      ),
      20_000,
      '100 scrapes',
    );
    results.forEach((result, i) => {
      assert.equal(result.status, 200, result.body);
      assert.equal(result.body, `b /m${i}\n`);
    });
    assert.equal(fake.maxLivePolls, 1);
    assert.equal(fake.expired, 0, 'no 408: never two polls at once');
    assert.equal(
      fake.pushes[0]?.headers['content-length'] !== undefined,
      true,
      'known lengths kept',
    );
  });

  it('sends NAME:TOKEN as basic auth on polls and pushes', async () => {
    const target = await startTarget((_req, res) => res.end('ok\n'), after);
    const fake = await startFakeProxy();
    startPushProxClient(fake, 'node-h', [{ host: '127.0.0.1', port: target.port }], {
      token: 's3cret',
    });
    await eventually(() => fake.livePolls('node-h') === 1, 5000, 'a waiting poll');
    await within(scrapeThrough(fake.port, `http://node-h:${target.port}/`), 5000, 'scrape');
    const expected = `Basic ${Buffer.from('node-h:s3cret').toString('base64')}`;
    assert.equal(fake.pollAuthorizations[0], expected);
    await eventually(() => fake.pushAuthorizations.length === 1, 5000, 'the push');
    assert.equal(fake.pushAuthorizations[0], expected);
  });
});

describe('natprox client --transport pushprox against natprox proxy', () => {
  it('both halves of natprox speak PushProx to each other, tokens included', async () => {
    const target = await startTarget((_req, res) => res.end('round trip\n'), after);
    const { createHash } = await import('node:crypto');
    const { port, url } = await startProxy(after, {
      clientGrants: [
        { tokenSha256: createHash('sha256').update('tok').digest('hex'), names: ['mixed'] },
      ],
    });
    startPushProxClient({ port }, 'mixed', [{ host: '127.0.0.1', port: target.port }], {
      proxyUrl: new URL(url),
      token: 'tok',
    });
    await eventually(
      async () => (await scrapeThrough(port, `http://mixed:${target.port}/`)).status === 200,
      5000,
      'a scrape to work',
    );
    const result = await scrapeThrough(port, `http://mixed:${target.port}/`);
    assert.equal(result.body, 'round trip\n');
  });

  it('answers without a body (204, 304) arrive at once, whatever Content-Length they name', async () => {
    const target = await startTarget((req, res) => {
      const status = req.url === '/no-content' ? 204 : req.url === '/not-modified' ? 304 : 200;
      res.writeHead(status, { 'content-length': status === 200 ? '3' : '1234' });
      res.end(status === 200 ? 'ok\n' : undefined);
    }, after);
    const { port, url } = await startProxy(after);
    startPushProxClient({ port }, 'bodiless', [{ host: '127.0.0.1', port: target.port }], {
      proxyUrl: new URL(url),
    });
    await eventually(
      async () => (await scrapeThrough(port, `http://bodiless:${target.port}/`)).status === 200,
      5000,
      'a scrape to work',
    );
    for (const [path, status] of [
      ['/no-content', 204],
      ['/not-modified', 304],
    ] as const) {
      const result = await within(
        scrapeThrough(port, `http://bodiless:${target.port}${path}`),
        2000,
        `${path} (the scrape deadline is 5 s)`,
      );
      assert.equal(result.status, status);
      assert.equal(result.body, '');
    }
  });

  it('the CLI takes --transport pushprox', async () => {
    const target = await startTarget((_req, res) => res.end('cli\n'), after);
    const fake = await startFakeProxy();
    const child = spawnNatprox(
      [
        'client',
        '--transport',
        'pushprox',
        '--proxy-url',
        `http://127.0.0.1:${fake.port}/`,
        '--name',
        'cli-node',
        '--allow',
        String(target.port),
      ],
      after,
    );
    await eventually(
      () => fake.livePolls('cli-node') === 1,
      10_000,
      `a waiting poll; output: ${child.output()}`,
    );
    const result = await within(
      scrapeThrough(fake.port, `http://cli-node:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.body, 'cli\n');
    assert.match(fake.handedOut[0] ?? '', /^GET http:\/\/cli-node:\d+\/ HTTP\/1\.1\r\n/);
  });
});
