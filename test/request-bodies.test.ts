/**
 * Request bodies through proxy and client: a GET or HEAD that carries one is refused by the
 * proxy with a clear 400 (not a 502 from a reset stream), `Expect: 100-continue` ends at
 * the proxy, and bodies of the methods an allowlist grants stream through to the target.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  readBody,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { readPolledRequest } from '../src/wire/pushprox/request-reader.js';
import { MAX_POLLED_BODY_BYTES } from '../src/wire/pushprox/wire-format.js';
import { rawRequest } from './helpers/raw-http.js';
import type { ClientOptions } from '../src/client/client-options.js';

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

/** Sends `method` with `body` (chunked when `chunked`) through the proxy to `targetUrl`. */
function sendThrough(
  proxyPort: number,
  method: string,
  targetUrl: string,
  body: Buffer,
  options: { chunked?: boolean; chunkBytes?: number; agent?: http.Agent } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { host } = new URL(targetUrl);
  return within(
    new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: proxyPort,
        method,
        path: targetUrl,
        headers: {
          host,
          ...(options.chunked ? {} : { 'content-length': String(body.length) }),
        },
        agent: options.agent ?? false,
      });
      req.once('error', reject);
      req.once('response', (res) => {
        readBody(res).then(
          (text) =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text.toString() }),
          reject,
        );
      });
      // In pieces, as a streaming sender would; an early answer stops the sending.
      const step = options.chunkBytes ?? 256 * 1024;
      let at = 0;
      const writeMore = (): void => {
        while (at < body.length && !req.destroyed) {
          const ok = req.write(body.subarray(at, at + step));
          at += step;
          if (!ok) {
            req.once('drain', writeMore);
            return;
          }
        }
        if (!req.destroyed) req.end();
      };
      writeMore();
    }),
    15_000,
    `${method} ${targetUrl}`,
  );
}

interface SeenRequest {
  method: string;
  url: string;
  bytes: number;
}

/** The most a request body may carry through the proxy in these tests (max_request_bytes). */
const LIMIT = 4 * 1024 * 1024;

/**
 * A target that answers each request with its body's size and SHA-256, a proxy with
 * max_request_bytes = LIMIT, and a client (with `client` on top) allowing GET on the target
 * and POST on /api/v1/read. `seen` lists the requests the target read to their end.
 */
async function startBodyRoute(
  client: Partial<ClientOptions>,
): Promise<{ proxyPort: number; targetPort: number; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  const target = await startTarget((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.once('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', bytes });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${bytes} ${hash.digest('hex')}\n`);
    });
  }, teardown);
  const proxy = await startProxy(teardown, { limits: { maxRequestBytes: LIMIT } });
  await startClient(teardown, {
    proxyUrl: new URL(proxy.url),
    ...client,
    allow: [
      { host: '127.0.0.1', port: target.port },
      { host: '127.0.0.1', port: target.port, pathPrefixes: ['/api/v1/read'], methods: ['POST'] },
    ],
  });
  return { proxyPort: proxy.port, targetPort: target.port, seen };
}

describe('request bodies through the native tunnel', () => {
  let proxyPort: number;
  let targetPort: number;
  let seen: SeenRequest[];

  before(async () => {
    ({ proxyPort, targetPort, seen } = await startBodyRoute({}));
  });

  it('a POST of several MiB to a granted path streams through, with Content-Length and chunked', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const expected = `${body.length} ${createHash('sha256').update(body).digest('hex')}\n`;
    const url = `http://demo:${targetPort}/api/v1/read`;
    const sized = await sendThrough(proxyPort, 'POST', url, body);
    assert.equal(sized.status, 200, sized.body);
    assert.equal(sized.body, expected);
    const chunked = await sendThrough(proxyPort, 'POST', url, body, { chunked: true });
    assert.equal(chunked.status, 200, chunked.body);
    assert.equal(chunked.body, expected);
    // A POST without a body works too.
    const empty = await sendThrough(proxyPort, 'POST', url, Buffer.alloc(0));
    assert.equal(empty.status, 200, empty.body);
    assert.match(empty.body, /^0 /);
    assert.deepEqual(
      seen.map((s) => [s.method, s.bytes]),
      [
        ['POST', body.length],
        ['POST', body.length],
        ['POST', 0],
      ],
    );
  });

  it('a POST or PUT the client does not grant: 405 or 403 from the client, the body never reaches the target', async () => {
    const before = seen.length;
    const body = randomBytes(1024 * 1024);
    const quit = await sendThrough(proxyPort, 'POST', `http://demo:${targetPort}/-/quit`, body);
    assert.equal(quit.status, 405, quit.body);
    assert.equal(quit.headers.allow, 'GET, HEAD');
    assert.match(quit.body, /^natprox client: method POST is not allowed/);
    const put = await sendThrough(proxyPort, 'PUT', `http://demo:${targetPort}/api/v1/read`, body);
    assert.equal(put.status, 405, put.body);
    assert.equal(put.headers.allow, 'GET, HEAD, POST');
    assert.equal(seen.length, before, 'the target was reached');
    // The tunnel is fine afterwards.
    const get = await scrapeThrough(proxyPort, `http://demo:${targetPort}/metrics`);
    assert.equal(get.status, 200, get.body);
  });

  it('after an answer that came before the whole body went, the keep-alive connection carries the next request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    after(() => agent.destroy());
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    const quit = await sendThrough(
      proxyPort,
      'POST',
      `http://demo:${targetPort}/-/quit`,
      randomBytes(2 * 1024 * 1024),
      { agent },
    );
    assert.equal(quit.status, 405, quit.body);
    const next = await within(
      scrapeThrough(proxyPort, `http://demo:${targetPort}/metrics`, {}, agent),
      5000,
      'the next request on the same connection',
    );
    assert.equal(next.status, 200, next.body);
    assert.equal(sockets.size, 1, 'both went over one connection');
  });

  it('a body over max_request_bytes: 413 from the proxy, declared or chunked; the target gets no whole body', async () => {
    const before = seen.length;
    const body = randomBytes(LIMIT + 1);
    const url = `http://demo:${targetPort}/api/v1/read`;
    const declared = await sendThrough(proxyPort, 'POST', url, body);
    assert.equal(declared.status, 413, declared.body);
    assert.equal(declared.headers['x-natprox-error'], 'NATPROX_REQUEST_TOO_LARGE');
    assert.match(declared.body, /max_request_bytes/);
    assert.equal(seen.length, before, 'a declared oversize body is refused before the tunnel');
    const chunked = await sendThrough(proxyPort, 'POST', url, body, { chunked: true });
    assert.equal(chunked.status, 413, chunked.body);
    assert.equal(chunked.headers['x-natprox-error'], 'NATPROX_REQUEST_TOO_LARGE');
    assert.equal(seen.length, before, 'the target finished no request');
  });
});

describe('request bodies over PushProx (natprox proxy, natprox client --transport pushprox)', () => {
  let proxyPort: number;
  let targetPort: number;
  let seen: SeenRequest[];

  before(async () => {
    ({ proxyPort, targetPort, seen } = await startBodyRoute({
      names: ['demo'],
      transport: 'pushprox',
      backoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
      pollAcceptedAfterMs: 50,
    }));
  });

  it('a POST to a granted path carries its body in the poll answer, Content-Length or chunked', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 5);
    const expected = `${body.length} ${createHash('sha256').update(body).digest('hex')}\n`;
    const url = `http://demo:${targetPort}/api/v1/read`;
    const sized = await sendThrough(proxyPort, 'POST', url, body);
    assert.equal(sized.status, 200, sized.body);
    assert.equal(sized.body, expected);
    const chunked = await sendThrough(proxyPort, 'POST', url, body, { chunked: true });
    assert.equal(chunked.status, 200, chunked.body);
    assert.equal(chunked.body, expected);
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.bytes]),
      [
        ['POST', '/api/v1/read', body.length],
        ['POST', '/api/v1/read', body.length],
      ],
    );
  });

  it('a method not granted: 405 from the client; a body over max_request_bytes: 413', async () => {
    const before = seen.length;
    const quit = await sendThrough(
      proxyPort,
      'POST',
      `http://demo:${targetPort}/-/quit`,
      Buffer.from('x'),
    );
    assert.equal(quit.status, 405, quit.body);
    assert.equal(quit.headers.allow, 'GET, HEAD');
    const url = `http://demo:${targetPort}/api/v1/read`;
    const tooLarge = await sendThrough(proxyPort, 'POST', url, randomBytes(LIMIT + 1), {
      chunked: true,
    });
    assert.equal(tooLarge.status, 413, tooLarge.body);
    assert.equal(tooLarge.headers['x-natprox-error'], 'NATPROX_REQUEST_TOO_LARGE');
    assert.equal(seen.length, before, 'the target was reached');
    const get = await scrapeThrough(proxyPort, `http://demo:${targetPort}/metrics`);
    assert.equal(get.status, 200, get.body);
  });
});

describe('a request body that stalls', () => {
  it('the scrape deadline ends it: 504 to the scraper, the target request aborted', async () => {
    let targetAborted!: () => void;
    const aborted = new Promise<void>((resolve) => {
      targetAborted = resolve;
    });
    let targetBytes = 0;
    const target = await startTarget((req, res) => {
      req.on('data', (chunk: Buffer) => {
        targetBytes += chunk.length;
      });
      req.once('close', () => {
        if (!req.complete) targetAborted();
      });
      req.once('end', () => res.end('whole\n'));
    }, teardown);
    const proxy = await startProxy(teardown);
    await startClient(teardown, {
      proxyUrl: new URL(proxy.url),
      allow: [{ host: '127.0.0.1', port: target.port, methods: ['POST'] }],
    });
    const url = `http://demo:${target.port}/api/v1/read`;
    const answer = await within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port: proxy.port,
          method: 'POST',
          path: url,
          headers: {
            host: `demo:${target.port}`,
            'content-length': '1000',
            'x-prometheus-scrape-timeout-seconds': '0.5',
          },
          agent: false,
        });
        req.once('error', reject);
        req.once('response', (res) => {
          readBody(res).then(
            (body) => resolve({ status: res.statusCode ?? 0, body: body.toString() }),
            reject,
          );
        });
        // Half the body, then nothing: the sender stalls.
        req.write(Buffer.alloc(500, 97));
      }),
      5000,
      'the answer to a stalled upload',
    );
    assert.equal(answer.status, 504, answer.body);
    await within(aborted, 5000, 'the target request to be aborted');
    assert.equal(targetBytes, 500, 'the target got the half that was sent, streamed');
  });
});

describe('a polled request with a body (PushProx wire format)', () => {
  const head = (framing: string): Buffer =>
    Buffer.from(
      `POST http://node-a:9090/api/v1/read HTTP/1.1\r\nHost: node-a:9090\r\nId: 1\r\n${framing}\r\n`,
      'latin1',
    );

  it('reads a Content-Length body and a chunked one (as Go writes a body of unknown length)', () => {
    const sized = readPolledRequest(
      Buffer.concat([head('Content-Length: 5\r\n'), Buffer.from('hello')]),
    );
    assert.equal(typeof sized === 'string' ? sized : sized.body?.toString(), 'hello');
    const chunked = readPolledRequest(
      Buffer.concat([
        head('Transfer-Encoding: chunked\r\n'),
        Buffer.from('3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n'),
      ]),
    );
    assert.equal(typeof chunked === 'string' ? chunked : chunked.body?.toString(), 'hello');
    const none = readPolledRequest(head(''));
    assert.equal(typeof none === 'string' ? none : none.body, undefined);
  });

  it('says what is wrong with a body cut off or over the limit', () => {
    const short = readPolledRequest(
      Buffer.concat([head('Content-Length: 9\r\n'), Buffer.from('hello')]),
    );
    assert.equal(short, "the polled request's body: cut off after 5 of 9 bytes");
    const open = readPolledRequest(
      Buffer.concat([head('Transfer-Encoding: chunked\r\n'), Buffer.from('5\r\nhello\r\n')]),
    );
    assert.equal(open, "the polled request's body: the chunked body is cut off");
    const huge = readPolledRequest(head(`Content-Length: ${MAX_POLLED_BODY_BYTES + 1}\r\n`));
    assert.match(String(huge), /over the limit of 16777216/);
  });
});
