/**
 * Security: the client fetches only what its allowlist permits, whatever the proxy or the
 * scraper asks. Other ports, other hosts, dot segments and encoded paths under a path
 * prefix, absolute-URI tricks, a Host header that disagrees with the URL, and redirects.
 * Refusals come from the client (403, NATPROX_TARGET_FORBIDDEN, a reason) and are counted
 * in its metrics; the servers that must not be reached record that they were not.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { createClientMetrics } from '../src/observability/client-metrics.js';
import type { NatproxClient } from '../src/index.js';
import {
  getOrigin,
  metricValue,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  startTargetOn,
  type ScrapeResult,
} from './helpers/loopback.js';
import { rawRequest } from './helpers/raw-http.js';

interface Seen {
  url: string;
  host: string | undefined;
  headers: IncomingHttpHeaders;
  localAddress: string;
}

/** A server that records every request and answers with what it saw. */
async function recordingServer(
  label: string,
  listen: (handler: RequestListener) => Promise<{ port: number }>,
): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const { port } = await listen((req, res) => {
    const entry: Seen = {
      url: req.url ?? '',
      host: req.headers.host,
      headers: req.headers,
      localAddress: req.socket.localAddress ?? '',
    };
    seen.push(entry);
    res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': label });
    res.end(JSON.stringify(entry));
  });
  return { port, seen };
}

function assertRefusedByClient(result: ScrapeResult, reason: RegExp, what: string): void {
  assert.equal(result.status, 403, `${what}: ${result.body}`);
  assert.equal(result.headers['x-natprox-error'], 'NATPROX_TARGET_FORBIDDEN', what);
  assert.match(result.body, /^natprox client: /, `${what}: refused by the client`);
  assert.match(result.body, reason, what);
}

describe('allowlist escapes', () => {
  /** The allowed target on 127.0.0.1: only /metrics… may be fetched from it. */
  let limited: { port: number; seen: Seen[] };
  /** An allowed target without path limits. */
  let open: { port: number; seen: Seen[] };
  /** Not on the allowlist, on the same host. */
  let secretPort: { port: number; seen: Seen[] };
  /** Not on the allowlist: another host (127.0.0.2), same port as `open`. */
  let secretHost: { port: number; seen: Seen[] };
  let port: number;
  let client: NatproxClient;
  let metrics: Registry;

  before(async () => {
    // The fixtures live as long as the suite: after() inside a hook would end them at once.
    const teardown = (fn: () => unknown): void => {
      teardowns.push(fn);
    };
    limited = await recordingServer('limited', (h) => startTarget(h, teardown));
    open = await recordingServer('open', (h) => startTarget(h, teardown));
    secretPort = await recordingServer('secret-port', (h) => startTarget(h, teardown));
    secretHost = await recordingServer('secret-host', (h) =>
      startTargetOn('127.0.0.2', h, teardown, open.port),
    );
    const proxy = await startProxy(teardown);
    port = proxy.port;
    client = await startClient(teardown, {
      proxyUrl: new URL(proxy.url),
      // A name is a client, not a host to connect to (IP addresses cannot be registered).
      names: ['demo', 'other.example'],
      allow: [
        { host: '127.0.0.1', port: limited.port, pathPrefixes: ['/metrics'] },
        { host: '127.0.0.1', port: open.port },
      ],
    });
    metrics = createClientMetrics(client.events);
  });
  const teardowns: Array<() => unknown> = [];
  after(async () => {
    for (const fn of teardowns.reverse()) await fn();
  });

  async function forbiddenCount(): Promise<number> {
    return (
      metricValue(await metrics.metrics(), 'natprox_client_scrapes_total', {
        outcome: 'forbidden',
      }) ?? 0
    );
  }

  function assertUntouched(): void {
    assert.deepEqual(secretPort.seen, [], 'the port not on the allowlist was reached');
    assert.deepEqual(secretHost.seen, [], 'the host not on the allowlist was reached');
  }

  it('another port: 403 from the client with a reason, counted in its metrics; the port is never reached', async () => {
    const before = await forbiddenCount();
    const result = await scrapeThrough(port, `http://demo:${secretPort.port}/metrics`);
    assertRefusedByClient(result, /not on this client's allowlist/, 'other port');
    assert.match(result.body, new RegExp(`port ${secretPort.port}`));
    assert.equal(await forbiddenCount(), before + 1);
    assertUntouched();
  });

  it('another host: the URL names a client, not a host; the scrape reaches only the host allowed for the port', async () => {
    const result = await scrapeThrough(port, `http://other.example:${open.port}/metrics`);
    assert.equal(result.status, 200, result.body);
    assert.equal(result.headers['x-served-by'], 'open');
    const seen = JSON.parse(result.body) as Seen;
    assert.equal(seen.localAddress, '127.0.0.1');
    assert.equal(seen.url, '/metrics');
    assert.equal(seen.host, `other.example:${open.port}`);
    // A host no client registered (an IP address never is): nobody is asked at all.
    for (const host of ['intranet.example', '127.0.0.2']) {
      const unknown = await scrapeThrough(port, `http://${host}:${open.port}/metrics`);
      assert.equal(unknown.status, 503, unknown.body);
      assert.equal(unknown.headers['x-natprox-error'], 'NATPROX_NO_CLIENT');
    }
    assertUntouched();
  });

  it('.. and encoded paths under a path prefix are refused by the client; the target never sees them', async () => {
    const seenBefore = limited.seen.length;
    const before = await forbiddenCount();
    const escapes = [
      '/metrics/../secret',
      '/metrics/%2e%2e/secret',
      '/metrics/%2E%2E/secret',
      '/metrics/.%2e/secret',
      '/metrics%2F..%2Fsecret',
      '/metrics/..%2Fsecret',
      '/metrics/..%2fsecret',
      '/metrics/%2e%2e%2fsecret',
      '/metrics%2f%2e%2e%2fsecret',
      '/metrics/..%5Csecret',
      '/metrics%5C..%5Csecret',
      '/metrics%00',
      '/metrics/%zz',
      '/metricsx',
      '/secret?/metrics',
      '/secret#/metrics',
      '/Metrics',
    ];
    for (const path of escapes) {
      const result = await scrapeThrough(port, `http://demo:${limited.port}${path}`);
      assertRefusedByClient(result, /refused|not allowed/, path);
    }
    assert.equal(limited.seen.length, seenBefore, 'the target saw none of them');
    assert.equal(await forbiddenCount(), before + escapes.length);

    // Dot segments that stay under the prefix once resolved are fine, resolved.
    const inside = await scrapeThrough(port, `http://demo:${limited.port}/metrics/%00/../node`);
    assert.equal(inside.status, 200, inside.body);
    assert.equal((JSON.parse(inside.body) as Seen).url, '/metrics/node');

    // Double encoding is decoded once and checked; the target gets the bytes as sent, so
    // "%252e%252e" stays a literal segment named "%2e%2e" and never becomes "..".
    const doubled = await scrapeThrough(port, `http://demo:${limited.port}/metrics/%252e%252e/x`);
    assert.equal(doubled.status, 200, doubled.body);
    assert.equal((JSON.parse(doubled.body) as Seen).url, '/metrics/%252e%252e/x');

    // Dot segments are refused on a port without path prefixes too.
    const openBefore = open.seen.length;
    for (const path of ['/a/..%2F..%2Fetc/passwd', '/%2e%2e%2fetc', '/a\\..%5C..%5Cwin.ini']) {
      const result = await scrapeThrough(port, `http://demo:${open.port}${path}`);
      assertRefusedByClient(result, /refused/, `open port ${path}`);
    }
    assert.equal(open.seen.length, openBefore);

    // The prefix itself and paths under it still work.
    for (const path of ['/metrics', '/metrics/node', '/metrics?x=1']) {
      const ok = await scrapeThrough(port, `http://demo:${limited.port}${path}`);
      assert.equal(ok.status, 200, `${path}: ${ok.body}`);
    }
  });

  it('raw request targets with dot segments or backslashes are refused too', async () => {
    const seenBefore = limited.seen.length;
    const paths = ['/metrics/../secret', '/metrics/./../secret', '/metrics\\..\\secret'];
    for (const path of paths) {
      const raw = await rawRequest(
        port,
        `GET http://demo:${limited.port}${path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(raw.status, 403, `${path}: ${raw.text}`);
    }
    assert.equal(limited.seen.length, seenBefore);
  });

  it('absolute-URI tricks route only by the URL name and reach only the allowed target', async () => {
    const base = open.seen.length;
    // "//evil.example/x" is a path on the allowed target, not another host.
    const doubleSlash = await scrapeThrough(port, `http://demo:${open.port}//evil.example/x`);
    assert.equal(doubleSlash.status, 200, doubleSlash.body);
    assert.equal(doubleSlash.headers['x-served-by'], 'open');
    assert.equal((JSON.parse(doubleSlash.body) as Seen).url, '//evil.example/x');

    // Userinfo is not a host.
    const userinfo = await scrapeThrough(port, `http://user@demo:${open.port}/ui`, {
      host: `demo:${open.port}`,
    });
    assert.equal(userinfo.status, 200, userinfo.body);
    assert.equal(userinfo.headers['x-served-by'], 'open');
    assert.equal((JSON.parse(userinfo.body) as Seen).url, '/ui');

    // The host after "@" is the one that counts: no client serves it.
    const atHost = await scrapeThrough(port, `http://demo:${open.port}@intranet.example/x`);
    assert.equal(atHost.status, 503, atHost.body);

    // A fragment cannot smuggle a name in.
    const fragment = await rawRequest(
      port,
      `GET http://intranet.example#@demo:${open.port}/x HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(fragment.status !== 200, fragment.text);

    // Host header disagreeing with the URL: the URL decides; the target sees the URL's name.
    const mismatch = await scrapeThrough(port, `http://demo:${open.port}/hm`, {
      host: `intranet.example:${secretPort.port}`,
    });
    assert.equal(mismatch.status, 200, mismatch.body);
    const seen = JSON.parse(mismatch.body) as Seen;
    assert.equal(seen.host, `demo:${open.port}`);
    assert.equal(seen.localAddress, '127.0.0.1');

    // Origin form with a Host naming a served name is how a reverse proxy (nginx) passes a
    // scrape on: it is a scrape of that client, through the same allowlist, never the
    // proxy's own page and never another host.
    const originForm = await getOrigin(port, '/metrics', { host: `demo:${open.port}` });
    assert.equal(originForm.status, 200, originForm.body);
    assert.equal((JSON.parse(originForm.body) as Seen).localAddress, '127.0.0.1');
    const originOther = await getOrigin(port, '/metrics', { host: `demo:${secretPort.port}` });
    assert.equal(originOther.status, 403, originOther.body);
    assert.equal(open.seen.length, base + 4, 'only the four scrapes that should, reached it');
    assertUntouched();
  });

  it('a redirect to another host reaches the scraper as it is; the client does not follow it', async () => {
    const redirecting = await startTarget((_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.2:${open.port}/stolen` });
      res.end();
    }, after);
    const proxy = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(proxy.url),
      names: ['redir'],
      allow: [
        { host: '127.0.0.1', port: redirecting.port },
        // Even a port the client allows elsewhere is not fetched on the target's say-so.
        { host: '127.0.0.1', port: open.port },
      ],
    });
    const openBefore = open.seen.length;
    const result = await scrapeThrough(proxy.port, `http://redir:${redirecting.port}/metrics`);
    assert.equal(result.status, 302, result.body);
    assert.equal(result.headers.location, `http://127.0.0.2:${open.port}/stolen`);
    assertUntouched();
    assert.equal(open.seen.length, openBefore);
  });
});
