/**
 * Request bodies through proxy and client: a GET or HEAD that carries one is refused by the
 * proxy with a clear 400 (not a 502 from a reset stream), `Expect: 100-continue` ends at
 * the proxy, and bodies of the methods an allowlist grants stream through to the target.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { scrapeThrough, startClient, startProxy, startTarget } from './helpers/loopback.js';
import { rawRequest } from './helpers/raw-http.js';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

const teardowns: Array<() => unknown> = [];
function teardown(fn: () => unknown): void {
  teardowns.push(fn);
}
after(async () => {
  for (const fn of teardowns.reverse()) await fn();
});

describe('GET and HEAD with a body, Expect: 100-continue', () => {
  let proxyPort: number;
  let targetPort: number;
  const seen: Seen[] = [];

  before(async () => {
    const target = await startTarget((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    }, teardown);
    targetPort = target.port;
    const proxy = await startProxy(teardown);
    proxyPort = proxy.port;
    await startClient(teardown, {
      proxyUrl: new URL(proxy.url),
      allow: [{ host: '127.0.0.1', port: targetPort }],
    });
  });

  it('a GET or HEAD with a Content-Length body or chunked: 400 from the proxy, the target sees nothing', async () => {
    const requests = [
      `GET http://demo:${targetPort}/metrics HTTP/1.1\r\nHost: demo:${targetPort}\r\nContent-Length: 5\r\n\r\nhello`,
      `GET http://demo:${targetPort}/metrics HTTP/1.1\r\nHost: demo:${targetPort}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      `HEAD http://demo:${targetPort}/metrics HTTP/1.1\r\nHost: demo:${targetPort}\r\nContent-Length: 3\r\n\r\nabc`,
      `GET http://demo:${targetPort}/metrics HTTP/1.1\r\nHost: demo:${targetPort}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
    ];
    for (const request of requests) {
      const answer = await rawRequest(proxyPort, request);
      const what = request.split('\r\n').slice(0, 3).join(' | ');
      // An Expect: 100-continue may get its interim 100 first; the final answer is a 400.
      assert.match(answer.text, /HTTP\/1\.1 400 /, `${what}: ${answer.text}`);
      assert.doesNotMatch(answer.text, /HTTP\/1\.1 (502|200) /, what);
      if (!request.startsWith('HEAD')) {
        assert.match(answer.text, /carries no body/, what);
      }
      assert.match(answer.text, /x-natprox-error: NATPROX_BAD_REQUEST/i, what);
    }
    assert.deepEqual(seen, [], 'the target was reached');
  });

  it('a GET with Expect: 100-continue and no body, or Content-Length: 0, is scraped; Expect stops at the proxy', async () => {
    const expecting = await scrapeThrough(proxyPort, `http://demo:${targetPort}/metrics`, {
      expect: '100-continue',
    });
    assert.equal(expecting.status, 200, expecting.body);
    assert.equal(expecting.body, 'ok\n');
    const empty = await rawRequest(
      proxyPort,
      `GET http://demo:${targetPort}/metrics HTTP/1.1\r\nHost: demo:${targetPort}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(empty.status, 200, empty.text);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.headers.expect, undefined);
  });
});
