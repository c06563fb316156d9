import assert from 'node:assert/strict';
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  BODY_COMPLETE_TRAILER,
  DEADLINE_HEADER,
  LENGTH_COMPLETES_HEADER,
  TUNNEL_UPGRADE_TOKEN,
} from '../src/wire/protocol.js';
import { dialTunnel } from '../src/client/native/tunnel-dialer.js';
import {
  eventually,
  openScrape,
  readBody,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';

/**
 * The proxy's end of a tunnel written straight on node:http2, standing in for proxies old
 * and new: it accepts one natprox client and sends scrapes with exactly the headers a test
 * chooses, so the test sees on the wire whether the client ends a body with the trailer.
 */
async function rawProxyEnd(): Promise<{ url: string; tunnel: Promise<ClientHttp2Session> }> {
  let accepted: (session: ClientHttp2Session) => void = () => {};
  const tunnel = new Promise<ClientHttp2Session>((resolve) => {
    accepted = resolve;
  });
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (_req, socket: Socket) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_UPGRADE_TOKEN}\r\n\r\n`,
      () => {
        const session = http2.connect('http://natprox-client', { createConnection: () => socket });
        after(() => session.destroy());
        accepted(session);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, tunnel };
}

interface WireAnswer {
  status: number;
  body: number;
  trailers: IncomingHttpHeaders | undefined;
}

function scrapeOnWire(
  session: ClientHttp2Session,
  targetPort: number,
  extra: Record<string, string>,
): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'GET',
      ':authority': `demo:${targetPort}`,
      ':path': '/metrics',
      [DEADLINE_HEADER]: '5000',
      ...extra,
    });
    let status = 0;
    let body = 0;
    let trailers: IncomingHttpHeaders | undefined;
    stream.once('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.once('trailers', (headers) => {
      trailers = headers;
    });
    stream.on('data', (chunk: Buffer) => {
      body += chunk.length;
    });
    stream.once('end', () => resolve({ status, body, trailers }));
    stream.once('error', reject);
  });
}

/** Scrapes twice over one keep-alive connection; the local port shows whether it held. */
async function twiceOverOneConnection(
  port: number,
  method: string,
  targetUrl: string,
): Promise<{ statuses: number[]; bodies: number[]; localPorts: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  after(() => agent.destroy());
  const statuses: number[] = [];
  const bodies: number[] = [];
  const localPorts: number[] = [];
  for (let i = 0; i < 2; i += 1) {
    const { host } = new URL(targetUrl);
    const res = await within(
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port,
          method,
          path: targetUrl,
          headers: { host },
          agent,
        });
        req.once('error', reject);
        req.once('response', resolve);
        req.end();
      }),
      3000,
      `${method} ${i + 1}`,
    );
    localPorts.push(res.socket.localPort ?? 0);
    statuses.push(res.statusCode ?? 0);
    bodies.push((await within(readBody(res), 3000, 'the body')).length);
    // A response the proxy took as cut off would be destroyed right after the head.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { statuses, bodies, localPorts };
}

describe('how a client marks a body complete', () => {
  async function setup(
    answer: 'length' | 'chunked',
  ): Promise<{ session: ClientHttp2Session; port: number }> {
    const body = '# a metric\n'.repeat(3000);
    const target = await startTarget((_req, res) => {
      if (answer === 'chunked') res.writeHead(200, { 'content-type': 'text/plain' });
      else res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    }, after);
    const proxy = await rawProxyEnd();
    await startClient(after, {
      proxyUrl: new URL(proxy.url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    return { session: await within(proxy.tunnel, 5000, 'the tunnel'), port: target.port };
  }

  it('sends the completion trailer to a proxy that does not count lengths (older proxies)', async () => {
    const { session, port } = await setup('length');
    const answer = await within(scrapeOnWire(session, port, {}), 5000, 'the scrape');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 33_000);
    assert.equal(answer.trailers?.[BODY_COMPLETE_TRAILER], '1');
  });

  it('leaves the trailer off a Content-Length body when the proxy counts its bytes', async () => {
    const { session, port } = await setup('length');
    const answer = await within(
      scrapeOnWire(session, port, { [LENGTH_COMPLETES_HEADER]: '1' }),
      5000,
      'the scrape',
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 33_000);
    assert.equal(answer.trailers, undefined);
  });

  it('keeps the trailer for a body without a Content-Length', async () => {
    const { session, port } = await setup('chunked');
    const answer = await within(
      scrapeOnWire(session, port, { [LENGTH_COMPLETES_HEADER]: '1' }),
      5000,
      'the scrape',
    );
    assert.equal(answer.body, 33_000);
    assert.equal(answer.trailers?.[BODY_COMPLETE_TRAILER], '1');
  });
});

describe('how the proxy judges a body without the trailer', () => {
  /** A client end that answers every scrape with Content-Length 1000 and `send` bytes. */
  async function clientSending(send: number): Promise<number> {
    const { port, url } = await startProxy(after);
    const tunnel = await dialTunnel({
      proxyUrl: new URL(url),
      registration: { names: ['demo'], labels: {}, ports: [9100], version: 'test' },
      handshakeTimeoutMs: 5000,
      heartbeat: { intervalMs: 5000, maxMissed: 2 },
      onStream: (stream) => {
        stream.respond({ ':status': 200, 'content-length': '1000' });
        stream.end(Buffer.alloc(send, 97));
      },
    });
    after(() => tunnel.destroy());
    return port;
  }

  it('takes a body that reached its Content-Length as complete, keeping the connection', async () => {
    const port = await clientSending(1000);
    const result = await twiceOverOneConnection(port, 'GET', 'http://demo:9100/metrics');
    assert.deepEqual(result.statuses, [200, 200]);
    assert.deepEqual(result.bodies, [1000, 1000]);
    assert.equal(
      result.localPorts[1],
      result.localPorts[0],
      'the second scrape reused the keep-alive connection',
    );
  });

  it('breaks the response of a body that ended short of its Content-Length', async () => {
    const port = await clientSending(10);
    const scrape = openScrape({ port }, 'http://demo:9100/metrics');
    const response = await within(scrape.response, 3000, 'the response head');
    await assert.rejects(
      within(readBody(response), 3000, 'the body to break'),
      /aborted|closed|reset/i,
    );
  });
});

describe('answers without a body, through proxy and client', () => {
  async function setup(): Promise<{ port: number; targetPort: number; served: string[] }> {
    const target = await startTarget((req, res) => {
      // 204 and 304 may name a Content-Length and still have no body (RFC 9110, 6.4.1).
      if (req.url === '/no-content') res.writeHead(204, { 'content-length': '1234' }).end();
      else if (req.url === '/not-modified') res.writeHead(304, { 'content-length': '1234' }).end();
      else res.writeHead(200, { 'content-length': '1234' }).end('x'.repeat(1234));
    }, after);
    const { port, url } = await startProxy(after);
    const client = await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const served: string[] = [];
    client.events.on('scrapeServed', (info) => served.push(info.outcome));
    return { port, targetPort: target.port, served };
  }

  for (const [method, path, status] of [
    ['HEAD', '/metrics', 200],
    ['GET', '/no-content', 204],
    ['GET', '/not-modified', 304],
  ] as const) {
    it(`${method} ${path}: ${status} arrives complete and the connection stays open`, async () => {
      const { port, targetPort, served } = await setup();
      const result = await twiceOverOneConnection(port, method, `http://demo:${targetPort}${path}`);
      assert.deepEqual(result.statuses, [status, status]);
      assert.deepEqual(result.bodies, [0, 0]);
      assert.equal(result.localPorts[1], result.localPorts[0], 'the connection was kept');
      // The client, too, saw both end at once (not waiting for the named length until its
      // deadline).
      await eventually(() => served.length === 2, 3000, 'the client to report both');
      assert.deepEqual(served, ['ok', 'ok']);
    });
  }
});
