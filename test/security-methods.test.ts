/**
 * Security: the client fetches only the methods its allowlist grants, whatever a proxy
 * sends. The proxies here are fakes that speak the tunnel (native: HTTP/2 straight on the
 * upgraded socket) or PushProx's poll format themselves, as a compromised proxy or a
 * PushProx proxy (no authentication, forwards any method) would: DELETE, PUT, POST, PATCH,
 * TRACE and OPTIONS to an allowed port get 405 or 403 from the client, and the target
 * records no request at all. A POST the allowlist grants goes through.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AllowedTarget } from '../src/client/allowlist.js';
import { NatproxClient } from '../src/index.js';
import { DEADLINE_HEADER, TUNNEL_UPGRADE_TOKEN } from '../src/wire/protocol.js';
import { eventually, readBody, startClient, startTarget, within } from './helpers/loopback.js';
import { parseMessage, type RawMessage } from './helpers/pushprox-peers.js';

const WRITE_METHODS = ['DELETE', 'PUT', 'POST', 'PATCH', 'TRACE', 'OPTIONS'];

/**
 * The fixtures live as long as the file: after() inside a before() hook would end them at
 * once, so they are ended here, after every suite.
 */
const teardowns: Array<() => unknown> = [];
function teardown(fn: () => unknown): void {
  teardowns.push(fn);
}
after(async () => {
  for (const fn of teardowns.reverse()) await fn();
});

interface Seen {
  method: string;
  url: string;
}

/** A target that records every request it gets (what must stay empty). */
async function recordingTarget(): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const { port } = await startTarget((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    readBody(req).then(
      (body) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${req.method} ${req.url} ${body.length}\n`);
      },
      () => res.destroy(),
    );
  }, teardown);
  return { port, seen };
}

/** The two targets of every test: one allowed as `--allow PORT`, one with a POST grant. */
async function targets(): Promise<{
  open: { port: number; seen: Seen[] };
  read: { port: number; seen: Seen[] };
  allow: AllowedTarget[];
}> {
  const open = await recordingTarget();
  const read = await recordingTarget();
  return {
    open,
    read,
    allow: [
      { host: '127.0.0.1', port: open.port },
      // As `--allow 'POST PORT/api/v1/read'` (GET/HEAD elsewhere: none).
      { host: '127.0.0.1', port: read.port, pathPrefixes: ['/api/v1/read'], methods: ['POST'] },
    ],
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A native proxy end that opens the tunnel itself and sends any method on a stream. */
async function fakeNativeProxy(): Promise<{ url: string; tunnel: Promise<ClientHttp2Session> }> {
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
        teardown(() => session.destroy());
        accepted(session);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, tunnel };
}

function onStream(
  session: ClientHttp2Session,
  method: string,
  authority: string,
  path: string,
  body?: Buffer,
): Promise<Answer> {
  return within(
    new Promise((resolve, reject) => {
      const stream = session.request(
        {
          ':method': method,
          ':authority': authority,
          ':path': path,
          [DEADLINE_HEADER]: '5000',
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        { endStream: body === undefined },
      );
      if (body) stream.end(body);
      let headers: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.once('response', (h) => {
        headers = h;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('end', () =>
        resolve({
          status: Number(headers[':status']),
          headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      stream.once('error', reject);
    }),
    5000,
    `${method} ${path}`,
  );
}

/**
 * A PushProx proxy reduced to what matters here: it hands out the request text a test
 * gives it, with whatever method, as the answer to the client's next poll, and resolves
 * with the push that answers it.
 */
class FakePollProxy {
  port = 0;
  private waiting: ServerResponse | undefined;
  private readonly waiters: Array<() => void> = [];
  private readonly pushed = new Map<string, (message: RawMessage) => void>();
  private readonly server = http.createServer((req, res) => this.route(req, res));

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    teardown(() => {
      this.server.closeAllConnections();
      this.server.close();
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Hands `head` + `body` to the next poll; resolves with the client's push. */
  async send(id: string, head: string, body = Buffer.alloc(0)): Promise<RawMessage> {
    await eventually(() => this.waiting !== undefined, 5000, 'a waiting poll');
    const res = this.waiting as ServerResponse;
    this.waiting = undefined;
    const push = new Promise<RawMessage>((resolve) => this.pushed.set(id, resolve));
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    return within(push, 5000, `the push for ${id}`);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    readBody(req).then(
      (body) => {
        if (req.url === '/poll') {
          this.waiting = res;
          for (const wake of this.waiters.splice(0)) wake();
          return;
        }
        const message = parseMessage(body);
        if (typeof message !== 'string') this.pushed.get(message.headers.id ?? '')?.(message);
        res.writeHead(200).end();
      },
      () => res.destroy(),
    );
  }
}

/** A polled request as PushProx's proxy writes it (Request.WriteProxy), any method. */
function pollRequest(method: string, fqdn: string, port: number, path: string, id: string) {
  return [
    `${method} http://${fqdn}:${port}${path} HTTP/1.1`,
    `Host: ${fqdn}:${port}`,
    'User-Agent: Prometheus/3.0',
    `Id: ${id}`,
    'X-Prometheus-Scrape-Timeout-Seconds: 5',
    '',
    '',
  ].join('\r\n');
}

function assertMethodRefused(answer: Answer, allow: string, what: string): void {
  assert.equal(answer.status, 405, `${what}: ${answer.body}`);
  assert.equal(answer.headers.allow, allow, what);
  assert.equal(answer.headers['x-natprox-error'], 'NATPROX_METHOD_NOT_ALLOWED', what);
  // A HEAD's answer has no body.
  if (!what.startsWith('HEAD')) {
    assert.match(answer.body, /^natprox client: method \S+ is not allowed/, what);
  }
}

function assertPathRefused(answer: Answer, what: string): void {
  assert.equal(answer.status, 403, `${what}: ${answer.body}`);
  assert.equal(answer.headers['x-natprox-error'], 'NATPROX_TARGET_FORBIDDEN', what);
  assert.match(answer.body, /^natprox client: path .* is not allowed/, what);
}

describe('methods over the native tunnel, from a proxy that sends any method', () => {
  let session: ClientHttp2Session;
  let fixture: Awaited<ReturnType<typeof targets>>;

  before(async () => {
    fixture = await targets();
    const proxy = await fakeNativeProxy();
    await startClient(teardown, { proxyUrl: new URL(proxy.url), allow: fixture.allow });
    session = await within(proxy.tunnel, 5000, 'the tunnel');
  });

  it('DELETE, PUT, POST, PATCH, TRACE, OPTIONS to a GET-only port: 405 with Allow, the target sees nothing', async () => {
    const { open } = fixture;
    for (const method of WRITE_METHODS) {
      for (const path of ['/metrics', '/-/quit', '/api/v1/admin/tsdb/delete_series']) {
        const answer = await onStream(session, method, `demo:${open.port}`, path);
        assertMethodRefused(answer, 'GET, HEAD', `${method} ${path}`);
      }
    }
    assert.deepEqual(open.seen, [], 'the target was reached');
    const get = await onStream(session, 'GET', `demo:${open.port}`, '/metrics');
    assert.equal(get.status, 200, get.body);
    assert.deepEqual(open.seen, [{ method: 'GET', url: '/metrics' }]);
  });

  it('a port with a POST grant: POST only on the granted path, 403 elsewhere, 405 for other methods', async () => {
    const { read } = fixture;
    const authority = `demo:${read.port}`;
    for (const method of WRITE_METHODS) {
      assertPathRefused(await onStream(session, method, authority, '/-/quit'), `${method} /-/quit`);
    }
    assertPathRefused(await onStream(session, 'GET', authority, '/metrics'), 'GET /metrics');
    for (const method of ['GET', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'TRACE', 'OPTIONS']) {
      const answer = await onStream(session, method, authority, '/api/v1/read');
      assertMethodRefused(answer, 'POST', `${method} /api/v1/read`);
    }
    assert.deepEqual(read.seen, [], 'the target was reached');
    const post = await onStream(session, 'POST', authority, '/api/v1/read');
    assert.equal(post.status, 200, post.body);
    assert.deepEqual(read.seen, [{ method: 'POST', url: '/api/v1/read' }]);
  });
});

describe('methods over PushProx, from a proxy that hands out any method', () => {
  let proxy: FakePollProxy;
  let fixture: Awaited<ReturnType<typeof targets>>;
  let count = 0;

  before(async () => {
    fixture = await targets();
    proxy = new FakePollProxy();
    await proxy.listen();
    const client = new NatproxClient({
      proxyUrl: new URL(`http://127.0.0.1:${proxy.port}/`),
      names: ['node-a'],
      allow: fixture.allow,
      transport: 'pushprox',
      backoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
      pollAcceptedAfterMs: 50,
    });
    client.start();
    teardown(() => client.stop(0));
  });

  async function polled(method: string, port: number, path: string): Promise<Answer> {
    count += 1;
    const id = `00000000-0000-4000-8000-${String(count).padStart(12, '0')}`;
    const push = await proxy.send(id, pollRequest(method, 'node-a', port, path, id));
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(push.startLine)?.[1] ?? 0);
    return { status, headers: push.headers, body: push.body.toString() };
  }

  it('DELETE, PUT, POST, PATCH, TRACE, OPTIONS to a GET-only port: 405 with Allow, the target sees nothing', async () => {
    const { open } = fixture;
    for (const method of WRITE_METHODS) {
      for (const path of ['/metrics', '/-/quit']) {
        assertMethodRefused(
          await polled(method, open.port, path),
          'GET, HEAD',
          `${method} ${path}`,
        );
      }
    }
    assert.deepEqual(open.seen, [], 'the target was reached');
    const get = await polled('GET', open.port, '/metrics');
    assert.equal(get.status, 200, get.body);
    assert.deepEqual(open.seen, [{ method: 'GET', url: '/metrics' }]);
  });

  it('a port with a POST grant: 403 for other paths, 405 for other methods on the granted one', async () => {
    const { read } = fixture;
    for (const method of WRITE_METHODS) {
      assertPathRefused(await polled(method, read.port, '/-/quit'), `${method} /-/quit`);
    }
    for (const method of ['GET', 'DELETE', 'PUT']) {
      assertMethodRefused(await polled(method, read.port, '/api/v1/read'), 'POST', method);
    }
    assert.deepEqual(read.seen, [], 'the target was reached');
  });

  it('a POST with a body to the granted path reaches the target with its body; a GET with a body gets 400', async () => {
    const { read, open } = fixture;
    count += 1;
    const id = `00000000-0000-4000-9000-${String(count).padStart(12, '0')}`;
    const body = Buffer.from('a remote-read query');
    const head = pollRequest('POST', 'node-a', read.port, '/api/v1/read', id).replace(
      '\r\n\r\n',
      `\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    const push = await proxy.send(id, head, body);
    assert.match(push.startLine, /^HTTP\/1\.1 200 /, push.body.toString());
    assert.equal(push.body.toString(), `POST /api/v1/read ${body.length}\n`);
    assert.deepEqual(read.seen, [{ method: 'POST', url: '/api/v1/read' }]);

    count += 1;
    const getId = `00000000-0000-4000-9000-${String(count).padStart(12, '0')}`;
    const getHead = pollRequest('GET', 'node-a', open.port, '/metrics', getId).replace(
      '\r\n\r\n',
      '\r\nContent-Length: 3\r\n\r\n',
    );
    const refused = await proxy.send(getId, getHead, Buffer.from('abc'));
    assert.match(refused.startLine, /^HTTP\/1\.1 400 /, refused.body.toString());
    assert.match(refused.body.toString(), /carries no body/);
    assert.equal(open.seen.length, 1, 'only the earlier GET reached the open target');
  });
});
