/**
 * Security: every input is bounded. Clients in total, names per client, streams per client,
 * response size (declared and streamed), request line and header size, and slow peers
 * (headers and TLS handshakes that never finish). Exceeding a limit gets its status and a
 * message, and disturbs no other client or scrape.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NatproxProxy } from '../src/index.js';
import {
  eventually,
  openScrape,
  readBody,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { rawRequest, tunnelAttempt } from './helpers/raw-http.js';
import { createTestCa, type TestCa } from './helpers/tls-fixtures.js';

const registration = (names: string[]) => ({ names, labels: {}, ports: [9100], version: 'test' });

describe('limits on clients and names', () => {
  it('max_clients reached: the next tunnel gets 503 with a message; connected clients keep serving', async () => {
    const a = await startTarget((_req, res) => res.end('a 1\n'), after);
    const b = await startTarget((_req, res) => res.end('b 1\n'), after);
    const { proxy, port, url } = await startProxy(after, { limits: { maxClients: 2 } });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['client-a'],
      allow: [{ host: '127.0.0.1', port: a.port }],
    });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['client-b'],
      allow: [{ host: '127.0.0.1', port: b.port }],
    });
    const third = await tunnelAttempt(port, { registration: registration(['client-c']) });
    assert.equal(third.status, 503, third.body);
    assert.match(third.body, /limit of 2 clients/);
    assert.match(third.body, /max_clients/);
    assert.equal(proxy.registry.size, 2);
    assert.equal(proxy.registry.lookup('client-c'), undefined);

    const [ra, rb] = await Promise.all([
      scrapeThrough(port, `http://client-a:${a.port}/metrics`),
      scrapeThrough(port, `http://client-b:${b.port}/metrics`),
    ]);
    assert.equal(ra.status, 200, ra.body);
    assert.equal(ra.body, 'a 1\n');
    assert.equal(rb.status, 200, rb.body);
    assert.equal(rb.body, 'b 1\n');
  });

  it('max_names_per_client exceeded: 400 naming the limit', async () => {
    const { proxy, port } = await startProxy(after, { limits: { maxNamesPerClient: 2 } });
    const many = await tunnelAttempt(port, { registration: registration(['n1', 'n2', 'n3']) });
    assert.equal(many.status, 400, many.body);
    assert.match(many.body, /3 names; the limit is 2/);
    assert.equal(proxy.registry.size, 0);
    const two = await tunnelAttempt(port, { registration: registration(['n1', 'n2']) });
    assert.equal(two.status, 101, two.body);
  });
});

describe('max_streams_per_client', () => {
  it('one stream too many gets 429 while the others of that client, and other clients, complete', async () => {
    const held: ServerResponse[] = [];
    const slow = await startTarget((_req, res) => {
      held.push(res);
    }, after);
    const other = await startTarget((_req, res) => res.end('other 1\n'), after);
    const { proxy, port, url } = await startProxy(after, { limits: { maxStreamsPerClient: 2 } });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['busy'],
      allow: [
        { host: '127.0.0.1', port: slow.port },
        { host: '127.0.0.1', port: other.port },
      ],
    });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['calm'],
      allow: [{ host: '127.0.0.1', port: other.port }],
    });
    const first = openScrape({ port }, `http://busy:${slow.port}/one`);
    const second = openScrape({ port }, `http://busy:${slow.port}/two`);
    await eventually(() => held.length === 2, 5000, 'two scrapes held at the target');
    assert.equal(proxy.activeScrapes, 2);

    const third = await scrapeThrough(port, `http://busy:${other.port}/three`);
    assert.equal(third.status, 429, third.body);
    assert.match(third.body, /max_streams_per_client/);
    assert.equal(third.headers['retry-after'], '1');

    const calm = await scrapeThrough(port, `http://calm:${other.port}/metrics`);
    assert.equal(calm.status, 200, calm.body);
    assert.equal(calm.body, 'other 1\n');

    for (const res of held) res.end('held 1\n');
    for (const scrape of [first, second]) {
      const response = await within(scrape.response, 5000, 'a held scrape');
      assert.equal(response.statusCode, 200);
      assert.equal((await readBody(response)).toString(), 'held 1\n');
    }
    await eventually(() => proxy.activeScrapes === 0, 2000, 'streams released');
    const again = await scrapeThrough(port, `http://busy:${other.port}/again`);
    assert.equal(again.status, 200, again.body);
  });
});

describe('max_response_bytes', () => {
  const LIMIT = 1000;

  async function setup() {
    const target = await startTarget((req, res) => {
      if (req.url === '/declared') {
        res.writeHead(200, { 'content-length': String(LIMIT * 5) });
        res.end('x'.repeat(LIMIT * 5));
      } else if (req.url === '/exact') {
        res.writeHead(200, { 'content-length': String(LIMIT) });
        res.end('x'.repeat(LIMIT));
      } else if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let sent = 0;
        const pump = (): void => {
          if (res.destroyed) return;
          if (sent >= LIMIT * 3) {
            res.end();
            return;
          }
          res.write('y'.repeat(250));
          sent += 250;
          setTimeout(pump, 2);
        };
        pump();
      } else {
        res.end('small 1\n');
      }
    }, after);
    const { proxy, port, url } = await startProxy(after, { limits: { maxResponseBytes: LIMIT } });
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const outcomes: string[] = [];
    proxy.events.on('scrapeFinished', (info) => outcomes.push(info.outcome));
    return { port, target, outcomes, base: `http://demo:${target.port}` };
  }

  it('a declared Content-Length over the limit gets 413 with a message', async () => {
    const { port, base, outcomes } = await setup();
    const result = await scrapeThrough(port, `${base}/declared`);
    assert.equal(result.status, 413, result.body.slice(0, 200));
    assert.match(result.body, /max_response_bytes/);
    assert.equal(outcomes.at(-1), 'too_large');
    const exact = await scrapeThrough(port, `${base}/exact`);
    assert.equal(exact.status, 200);
    assert.equal(exact.body.length, LIMIT, 'exactly the limit is allowed');
  });

  it('a chunked body passing the limit is cut off (never delivered as complete); the next scrape works', async () => {
    const { port, base, outcomes } = await setup();
    const scrape = openScrape({ port }, `${base}/chunked`);
    const response = await within(scrape.response, 5000, 'the head of the large response');
    assert.equal(response.statusCode, 200);
    const body = await within(
      readBody(response).then(
        (bytes) => ({ complete: true, length: bytes.length }),
        () => ({ complete: false, length: -1 }),
      ),
      5000,
      'the end of the cut-off body',
    );
    assert.equal(body.complete, false, `the body arrived as complete (${body.length} bytes)`);
    await eventually(() => outcomes.includes('too_large'), 2000, 'the scrape counted as too_large');

    const next = await scrapeThrough(port, `${base}/small`);
    assert.equal(next.status, 200, next.body);
    assert.equal(next.body, 'small 1\n');
  });
});

describe('request size and slow peers', () => {
  let ca: TestCa;
  before(() => {
    ca = createTestCa('ca');
  });
  after(() => ca.remove());

  async function setup() {
    const target = await startTarget((_req, res) => res.end('ok 1\n'), after);
    const started = await startProxy(after, {
      timeouts: { headersMs: 500, tlsHandshakeMs: 500, idleMs: 2000 },
    });
    await startClient(after, {
      proxyUrl: new URL(started.url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    return { ...started, target, scrapeUrl: `http://demo:${target.port}/metrics` };
  }

  it('request headers over 32 KiB get 431; a request line over 32 KiB too', async () => {
    const { port, scrapeUrl } = await setup();
    const bigHeader = await rawRequest(
      port,
      `GET ${scrapeUrl} HTTP/1.1\r\nHost: demo\r\nX-Big: ${'a'.repeat(33 * 1024)}\r\n\r\n`,
    );
    assert.equal(bigHeader.status, 431, bigHeader.text.slice(0, 300));
    assert.match(bigHeader.text, /exceed/);

    const manyHeaders = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(90)}\r\n`);
    const many = await rawRequest(
      port,
      `GET ${scrapeUrl} HTTP/1.1\r\nHost: demo\r\n${manyHeaders.join('')}\r\n`,
    );
    assert.equal(many.status, 431, many.text.slice(0, 300));

    const longLine = await rawRequest(
      port,
      `GET ${scrapeUrl}?q=${'c'.repeat(33 * 1024)} HTTP/1.1\r\nHost: demo\r\n\r\n`,
    );
    assert.equal(longLine.status, 431, longLine.text.slice(0, 300));

    const normal = await scrapeThrough(port, scrapeUrl);
    assert.equal(normal.status, 200, normal.body);
  });

  it('slowloris: a connection trickling its headers is closed after headersMs; other scrapes are unaffected', async () => {
    const { port, scrapeUrl } = await setup();
    // 250 bytes at one per 40 ms: the headers would take 10 s to arrive.
    const header = `GET ${scrapeUrl} HTTP/1.1\r\nHost: demo\r\nX-Slow: ${'z'.repeat(200)}\r\n\r\n`;
    const trickles = Array.from({ length: 20 }, () =>
      rawRequest(port, [...header], { writeDelayMs: 40, timeoutMs: 4000 }),
    );
    // Meanwhile, ordinary scrapes go through at once.
    const started = Date.now();
    for (let i = 0; i < 5; i += 1) {
      const result = await scrapeThrough(port, scrapeUrl);
      assert.equal(result.status, 200, result.body);
    }
    assert.ok(Date.now() - started < 2000, 'scrapes were not slowed down');
    const results = await Promise.all(trickles);
    for (const result of results) {
      // headersMs is 500: allow scheduling slack, but far less than the whole trickle.
      assert.equal(
        result.timedOut,
        false,
        `a connection trickling headers was still open after ${result.elapsedMs} ms (headersMs 500)`,
      );
      assert.ok(result.status === undefined || result.status === 408, result.text);
    }
  });

  it('a connection that never sends anything is closed after headersMs', async () => {
    const { port } = await setup();
    const silent = await rawRequest(port, [], { timeoutMs: 4000 });
    assert.equal(
      silent.timedOut,
      false,
      `a silent connection was still open after ${silent.elapsedMs} ms (headersMs 500)`,
    );
  });

  it('a TLS handshake that never finishes is closed after tlsHandshakeMs', async (t) => {
    const cert = ca.issue('proxy');
    const proxy = new NatproxProxy({
      listen: { host: '127.0.0.1', port: 0 },
      defaultScrapeTimeoutMs: 5000,
      maxScrapeTimeoutMs: 60_000,
      tls: { cert: cert.cert, key: cert.key },
      timeouts: { headersMs: 5000, tlsHandshakeMs: 500 },
    });
    const { port } = await proxy.listen();
    // Bounded: a connection stuck in its handshake would otherwise hold the shutdown forever.
    t.after(() => within(proxy.shutdown(0), 2000, 'proxy shutdown').catch(() => {}));
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const closed = new Promise<number>((resolve) =>
      socket.once('close', () => resolve(Date.now() - started)),
    );
    // Destroyed here whatever happens: a socket left open would hold the proxy's shutdown.
    const closedAfter = await within(
      closed,
      4000,
      'the silent TLS connection to be closed',
    ).finally(() => socket.destroy());
    assert.ok(closedAfter >= 400, `closed after ${closedAfter} ms, before the timeout`);
  });
});
