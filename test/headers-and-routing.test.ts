/**
 * What passes through natprox unchanged (end-to-end headers, compressed bodies, query
 * strings) and what does not (hop-by-hop headers); and how names and allowlist entries route
 * a scrape: several names per client, hosts other than 127.0.0.1, newest registration wins,
 * and IPv6 end to end.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import { after, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { resolveClientSettings } from '../src/config/client-settings.js';
import {
  eventually,
  getOrigin,
  openScrape,
  readBody,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  startTargetOn,
  within,
} from './helpers/loopback.js';
import { tunnelAttempt } from './helpers/raw-http.js';

interface Echo {
  url: string;
  headers: IncomingHttpHeaders;
  localAddress: string;
  remoteAddress: string;
}

/** A target that answers with what it received, as JSON. */
const echo: RequestListener = (req, res) => {
  const seen: Echo = {
    url: req.url ?? '',
    headers: req.headers,
    localAddress: req.socket.localAddress ?? '',
    remoteAddress: req.socket.remoteAddress ?? '',
  };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(seen));
};

function parseEcho(body: string): Echo {
  try {
    return JSON.parse(body) as Echo;
  } catch {
    throw new Error(`not an echo: ${body.slice(0, 300)}`);
  }
}

/** The client options the CLI builds from `--proxy-url URL --name N... --allow A...`. */
function fromFlags(proxyUrl: string, names: string[], allow: string[]) {
  return resolveClientSettings({ 'proxy-url': proxyUrl, name: names, allow }).client;
}

describe('headers pass through, hop-by-hop ones do not', () => {
  it('end-to-end request headers reach the target; hop-by-hop and natprox-internal ones do not', async () => {
    const target = await startTarget(echo, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const result = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5',
      'accept-encoding': 'gzip',
      authorization: 'Bearer target-token',
      'x-prometheus-scrape-timeout-seconds': '7.5',
      'x-custom-header': 'custom value',
      'user-agent': 'Prometheus/2.53.0',
      // Hop-by-hop: meant for the proxy, never for the target.
      'proxy-authorization': 'Basic cHJvbWV0aGV1czpzM2NyZXQ=',
      connection: 'keep-alive, x-named-in-connection',
      'x-named-in-connection': 'hop-by-hop because Connection names it',
      'keep-alive': 'timeout=30',
      'proxy-connection': 'keep-alive',
    });
    assert.equal(result.status, 200, result.body);
    const { headers } = parseEcho(result.body);

    assert.equal(
      headers.accept,
      'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5',
    );
    assert.equal(headers['accept-encoding'], 'gzip');
    assert.equal(headers.authorization, 'Bearer target-token');
    assert.equal(headers['x-prometheus-scrape-timeout-seconds'], '7.5');
    assert.equal(headers['x-custom-header'], 'custom value');
    assert.equal(headers['user-agent'], 'Prometheus/2.53.0');

    assert.equal(headers['proxy-authorization'], undefined, 'Proxy-Authorization leaked');
    assert.equal(headers['keep-alive'], undefined, 'Keep-Alive leaked');
    assert.equal(headers['proxy-connection'], undefined, 'Proxy-Connection leaked');
    assert.equal(
      headers['x-named-in-connection'],
      undefined,
      'a header named in Connection leaked',
    );
    assert.doesNotMatch(
      String(headers.connection ?? ''),
      /x-named-in-connection/,
      "the scraper's Connection header leaked",
    );
    const internal = Object.keys(headers).filter((name) => name.startsWith('x-natprox-'));
    assert.deepEqual(internal, [], 'natprox-internal headers reached the target');
  });

  it('response headers come back, and a gzip body arrives byte-exact', async () => {
    const text = Array.from(
      { length: 2000 },
      (_, i) => `node_cpu_seconds_total{cpu="${i % 8}",mode="idle"} ${i * 1.5}\n`,
    ).join('');
    const gzipped = gzipSync(text);
    let acceptEncoding: string | undefined;
    const target = await startTarget((req, res) => {
      acceptEncoding = req.headers['accept-encoding'];
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'content-encoding': 'gzip',
        'x-target-custom': 'from the target',
        vary: 'Accept-Encoding',
      });
      res.end(gzipped);
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`, {
      'accept-encoding': 'gzip',
    });
    const res = await within(scrape.response, 3000, 'the response head');
    const body = await within(readBody(res), 3000, 'the body');

    assert.equal(res.statusCode, 200);
    assert.equal(acceptEncoding, 'gzip');
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['x-target-custom'], 'from the target');
    assert.equal(res.headers.vary, 'Accept-Encoding');
    assert.equal(body.length, gzipped.length);
    assert.ok(body.equals(gzipped), 'the gzip body changed on the way');
    assert.equal(gunzipSync(body).toString(), text);
  });

  it('query strings with repeated keys and percent-encoding arrive unchanged', async () => {
    const target = await startTarget(echo, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const paths = [
      '/federate?match[]=%7Bjob%3D%22node%22%7D&match[]=up',
      '/federate?match%5B%5D=%7B__name__%3D~%22job%3A.%2A%22%7D&match%5B%5D=up',
      '/metrics?a=1&a=2&a=1&empty=&flag&sp=%20x+y%2By%26z%3D',
      '/probe?target=http%3A%2F%2Fexample.com%2Fa%3Fb%3Dc&module=http_2xx',
      '/odd%20path/a%2Fb/%E2%9C%93?q=%E2%9C%93',
    ];
    for (const path of paths) {
      const result = await scrapeThrough(port, `http://demo:${target.port}${path}`);
      assert.equal(result.status, 200, `${path}: ${result.body}`);
      assert.equal(parseEcho(result.body).url, path);
    }
  });
});

describe('routing by name and allowlist', () => {
  it('a client with two names serves both', async () => {
    const target = await startTarget(echo, after);
    const { port, url } = await startProxy(after);
    await startClient(after, fromFlags(url, ['alpha', 'beta.home'], [String(target.port)]));

    for (const name of ['alpha', 'beta.home']) {
      const result = await scrapeThrough(port, `http://${name}:${target.port}/metrics?n=${name}`);
      assert.equal(result.status, 200, `${name}: ${result.body}`);
      const seen = parseEcho(result.body);
      assert.equal(seen.url, `/metrics?n=${name}`);
      assert.equal(seen.headers.host, `${name}:${target.port}`);
    }
    const other = await scrapeThrough(port, `http://gamma:${target.port}/metrics`);
    assert.equal(other.status, 503);
  });

  it('--allow HOST:PORT on 127.0.0.2 routes the scrape to that host', async () => {
    const target = await startTargetOn('127.0.0.2', echo, after);
    const { port, url } = await startProxy(after);
    await startClient(after, fromFlags(url, ['demo'], [`127.0.0.2:${target.port}`]));

    const result = await scrapeThrough(port, `http://demo:${target.port}/metrics`);
    assert.equal(result.status, 200, result.body);
    assert.equal(parseEcho(result.body).localAddress, '127.0.0.2');
  });

  it('a second client registering the same name takes over; the old one gets no more scrapes', async () => {
    const target = await startTarget(echo, after);
    const { proxy, port, url } = await startProxy(after);
    const options = {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    };
    const first = await startClient(after, options);
    const served = { first: 0, second: 0 };
    first.events.on('scrapeServed', () => {
      served.first += 1;
    });
    const scrapeUrl = `http://demo:${target.port}/metrics`;

    assert.equal((await scrapeThrough(port, scrapeUrl)).status, 200);
    await eventually(() => served.first === 1, 2000, 'the first client to report the scrape');
    assert.deepEqual(served, { first: 1, second: 0 });

    const second = await startClient(after, options);
    second.events.on('scrapeServed', () => {
      served.second += 1;
    });
    for (let i = 0; i < 5; i += 1) {
      const result = await scrapeThrough(port, scrapeUrl);
      assert.equal(result.status, 200, result.body);
    }
    await eventually(() => served.first + served.second === 6, 2000, 'every scrape reported');
    assert.deepEqual(served, { first: 1, second: 5 }, 'the newest registration did not win');

    // When the newest goes away, the older live one serves the name again.
    await second.stop(0);
    await eventually(() => proxy.registry.size === 1, 3000, 'the proxy to drop the second client');
    const result = await scrapeThrough(port, scrapeUrl);
    assert.equal(result.status, 200, result.body);
    await eventually(() => served.first === 2, 2000, 'the first client to serve again');
    assert.deepEqual(served, { first: 2, second: 5 });
  });

  it('IPv6: proxy on ::1, client via http://[::1]:PORT, target allowed as [::1]:PORT', async () => {
    const target = await startTargetOn('::1', echo, after);
    const { port } = await startProxy(after, { listen: { host: '::1', port: 0 } });
    await startClient(after, fromFlags(`http://[::1]:${port}`, ['demo'], [`[::1]:${target.port}`]));

    const scrape = openScrape({ host: '::1', port }, `http://demo:${target.port}/metrics?v=6`);
    const res = await within(scrape.response, 3000, 'the response head');
    const body = (await within(readBody(res), 3000, 'the body')).toString();
    assert.equal(res.statusCode, 200, body);
    const seen = parseEcho(body);
    assert.equal(seen.url, '/metrics?v=6');
    assert.equal(seen.localAddress, '::1');
    assert.equal(seen.remoteAddress, '::1');
  });
});

describe('origin-form requests (behind a reverse proxy)', () => {
  it("are scrapes when Host names a connected client; IP addresses and localhost are the proxy's own and cannot be registered", async () => {
    const target = await startTarget((req, res) => res.end(`target ${req.url}`), after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home-1'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    for (const name of ['127.0.0.1', 'localhost']) {
      const attempt = await tunnelAttempt(port, {
        registration: { names: [name], labels: {}, ports: [target.port], version: 'test' },
      });
      assert.equal(attempt.status, 403, attempt.body);
      assert.match(attempt.body, /the proxy itself answers to/);
    }
    const scrape = await getOrigin(port, '/metrics', { host: `home-1:${target.port}` });
    assert.equal(scrape.body, 'target /metrics');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const own = await getOrigin(port, '/metrics', { host });
      assert.match(own.body, /natprox_scrapes_total/, `${host} reaches the proxy's own /metrics`);
    }
  });
});
