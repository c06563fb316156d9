/**
 * Security: what one registration may claim. Per clients: entry, the names and tunnels it
 * holds (a restarting client replaces its own old tunnel instead of being locked out); per
 * registration, labels and ports; PushProx names with no poll waiting stop counting after
 * the re-poll grace and never shadow a live tunnel; reserved labels (job, instance) are
 * refused; and the proxy's own names are neither registrable nor routed to a client.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { encodeRegistration, REGISTRATION_HEADER, TUNNEL_PATH } from '../src/wire/protocol.js';
import type { Registration } from '../src/wire/protocol.js';
import { sha256 } from './helpers/hashes.js';
import {
  eventually,
  getOrigin,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { basicAuth, GoStyleClient, goPost, rawExchange } from './helpers/pushprox-peers.js';
import { tunnelAttempt } from './helpers/raw-http.js';
import { createTestCa } from './helpers/tls-fixtures.js';

const registration = (names: string[], extra: Partial<Registration> = {}): Registration => ({
  names,
  labels: {},
  ports: [9100],
  version: 'test',
  ...extra,
});

/**
 * A tunnel whose client stopped answering without closing (a restarted client's old
 * connection, not yet known dead): upgraded, then silent. Resolves once the 101 is in.
 */
function silentTunnel(port: number, token: string, names: string[]): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    after(() => socket.destroy());
    let head = '';
    const timer = setTimeout(() => reject(new Error('no 101 within 5 s')), 5000);
    socket.on('data', function onData(chunk: Buffer) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n')) return;
      socket.off('data', onData);
      clearTimeout(timer);
      if (head.startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(`tunnel refused: ${head}`));
    });
    socket.once('error', reject);
    socket.write(
      [
        `GET ${TUNNEL_PATH} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Connection: Upgrade',
        'Upgrade: natprox-h2',
        `Authorization: Bearer ${token}`,
        `${REGISTRATION_HEADER}: ${encodeRegistration(registration(names))}`,
        '',
        '',
      ].join('\r\n'),
    );
  });
}

function closedByPeer(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
    socket.resume();
  });
}

/** One PushProx poll for `name`; the answer (status line and body) as text. */
function pollOnce(port: number, name: string, token: string): Promise<string> {
  return rawExchange(port, goPost(port, '/poll', name, basicAuth(name, token)), {
    timeoutMs: 5000,
  }).then((raw) => raw.toString());
}

describe('limits per clients: entry', () => {
  it('a glob entry holds at most max_names names: the next one is refused with which entry and which field', async () => {
    const { proxy, port } = await startProxy(after, {
      clientGrants: [{ names: ['home-*'], tokenSha256: sha256('fleet'), maxNames: 2 }],
    });
    await silentTunnel(port, 'fleet', ['home-1']);
    await silentTunnel(port, 'fleet', ['home-2']);
    const third = await tunnelAttempt(port, {
      registration: registration(['home-3']),
      token: 'fleet',
    });
    assert.equal(third.status, 429, third.body);
    assert.match(third.body, /clients: entry for home-\*/);
    assert.match(third.body, /may hold at most 2/);
    assert.match(third.body, /max_names/);
    // PushProx polls count against the same entry.
    const poll = await pollOnce(port, 'home-4', 'fleet');
    assert.match(poll, /^HTTP\/1\.1 429/);
    assert.match(poll, /max_names/);
    assert.equal(proxy.registry.size, 2);
  });

  it('max_tunnels: one credential cannot take every slot; other entries still connect', async () => {
    const { proxy, port, url } = await startProxy(after, {
      clientGrants: [
        { names: ['home-*'], tokenSha256: sha256('fleet'), maxTunnels: 2 },
        { names: ['nas'], tokenSha256: sha256('nas') },
      ],
      limits: { maxClients: 3 },
    });
    await silentTunnel(port, 'fleet', ['home-1']);
    await silentTunnel(port, 'fleet', ['home-2']);
    const third = await tunnelAttempt(port, {
      registration: registration(['home-3']),
      token: 'fleet',
    });
    assert.equal(third.status, 429, third.body);
    assert.match(third.body, /already holds 2 tunnels/);
    assert.match(third.body, /max_tunnels/);
    const target = await startTarget((_req, res) => res.end('nas 1\n'), after);
    await startClient(after, {
      proxyUrl: new URL(url),
      token: 'nas',
      names: ['nas'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const scrape = await scrapeThrough(port, `http://nas:${target.port}/metrics`);
    assert.equal(scrape.body, 'nas 1\n');
    assert.equal(proxy.registry.size, 3);
  });

  it('a restarting client at its limit replaces its own silent old tunnel instead of being refused', async () => {
    const target = await startTarget((_req, res) => res.end('pi 1\n'), after);
    const { proxy, port, url } = await startProxy(after, {
      clientGrants: [{ names: ['pi'], tokenSha256: sha256('pi') }],
      limits: { maxTunnelsPerName: 1 },
    });
    const old = await silentTunnel(port, 'pi', ['pi']);
    const oldClosed = closedByPeer(old);
    await startClient(after, {
      proxyUrl: new URL(url),
      token: 'pi',
      names: ['pi'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    await within(oldClosed, 5000, 'the old tunnel closed by the proxy');
    const scrape = await scrapeThrough(port, `http://pi:${target.port}/metrics`);
    assert.equal(scrape.body, 'pi 1\n');
    assert.equal(proxy.registry.size, 1);
  });
});

describe('limits per registration', () => {
  it('labels, label values and ports are capped (max_labels_per_client, max_ports_per_client): 400 naming the limit', async () => {
    const { proxy, port } = await startProxy(after);
    const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v']));
    const manyLabels = await tunnelAttempt(port, { registration: registration(['a'], { labels }) });
    assert.equal(manyLabels.status, 400, manyLabels.body);
    assert.match(manyLabels.body, /33 labels; the limit is 32 \(limits: max_labels_per_client/);
    const ports = Array.from({ length: 65 }, (_, i) => 9000 + i);
    const manyPorts = await tunnelAttempt(port, { registration: registration(['a'], { ports }) });
    assert.equal(manyPorts.status, 400, manyPorts.body);
    assert.match(manyPorts.body, /65 ports; the limit is 64 \(limits: max_ports_per_client/);
    const long = await tunnelAttempt(port, {
      registration: registration(['a'], { labels: { note: 'x'.repeat(1025) } }),
    });
    assert.equal(long.status, 400, long.body);
    assert.match(long.body, /value of 1025 characters; the limit is 1024/);
    assert.equal(proxy.registry.size, 0);
  });

  it('job and instance labels are refused: a client cannot pass itself off as another target', async () => {
    const { proxy, port } = await startProxy(after);
    for (const label of ['job', 'instance']) {
      const attempt = await tunnelAttempt(port, {
        registration: registration(['a'], { labels: { [label]: 'node' } }),
      });
      assert.equal(attempt.status, 400, attempt.body);
      assert.match(attempt.body, new RegExp(`"${label}" is a reserved label`));
    }
    assert.equal(proxy.registry.size, 0);
  });
});

describe('PushProx registrations', () => {
  it('a name polled once stops counting after the re-poll grace, not idle_timeout', async () => {
    const { proxy, port } = await startProxy(after, { longPoll: { repollGraceMs: 300 } });
    const names = Array.from({ length: 20 }, (_, i) => `made-up-${i}`);
    let registered = 0;
    proxy.events.on('tunnelConnected', () => (registered += 1));
    await Promise.all(
      names.map(
        (name) =>
          new Promise<void>((resolve) => {
            const socket = net.connect({ host: '127.0.0.1', port });
            socket.on('error', () => {});
            socket.write(goPost(port, '/poll', name));
            setTimeout(() => {
              socket.destroy();
              resolve();
            }, 50);
          }),
      ),
    );
    await eventually(() => registered === 20, 2000, 'the polls registered');
    const closedAt = Date.now();
    await eventually(() => proxy.registry.size === 0, 3000, 'the names to lapse');
    assert.ok(Date.now() - closedAt < 2000, 'within a few re-poll graces');
    const sd = JSON.parse((await getOrigin(port, '/clients')).body) as unknown[];
    assert.deepEqual(sd, []);
  });

  it('a live native tunnel wins over a PushProx registration with no poll waiting', async () => {
    const target = await startTarget((_req, res) => res.end('native 1\n'), after);
    // A long grace: the native tunnel must win because it can serve now, not by expiry.
    const { proxy, port, url } = await startProxy(after, { longPoll: { repollGraceMs: 60_000 } });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['pi'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const stale = new GoStyleClient({ proxyPort: port, fqdn: 'pi' });
    let pollSocket: net.Socket | undefined;
    stale
      .poll((socket) => {
        pollSocket = socket;
      })
      .catch(() => {});
    await eventually(() => proxy.registry.lookup('pi')?.transport === 'pushprox', 5000, 'poll');
    pollSocket?.destroy();
    await eventually(() => proxy.registry.lookup('pi')?.transport === 'native', 5000, 'native');
    const scrape = await scrapeThrough(port, `http://pi:${target.port}/metrics`);
    assert.equal(scrape.status, 200, scrape.body);
    assert.equal(scrape.body, 'native 1\n');
    const sd = JSON.parse((await getOrigin(port, '/clients')).body) as Array<{
      labels: Record<string, string>;
    }>;
    assert.equal(sd[0]?.labels.__meta_natprox_transport, 'native');
  });
});

describe("the proxy's own names", () => {
  it('public_names cannot be registered, by native or PushProx clients', async () => {
    const { proxy, port } = await startProxy(after, { publicNames: ['vps.example.com'] });
    const native = await tunnelAttempt(port, { registration: registration(['vps.example.com']) });
    assert.equal(native.status, 403, native.body);
    assert.match(native.body, /"vps\.example\.com" is a name the proxy itself answers to/);
    const poll = (
      await rawExchange(port, goPost(port, '/poll', 'VPS.example.com'), { timeoutMs: 5000 })
    ).toString();
    assert.match(poll, /^HTTP\/1\.1 403/);
    assert.match(poll, /the proxy itself answers to/);
    assert.equal(proxy.registry.size, 0);
  });

  it("the TLS certificate's names cannot be registered", async () => {
    const ca = createTestCa('own-names');
    after(() => ca.remove());
    const server = ca.issue('proxy', ['proxy.example.test', '127.0.0.1']);
    const { port } = await startProxy(after, { tls: { cert: server.cert, key: server.key } });
    const answering = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/poll',
          ca: ca.cert,
          servername: 'proxy.example.test',
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.once('error', reject);
      req.end('proxy.example.test');
      after(() => req.destroy());
    });
    const answer = await within(answering, 5000, 'the poll answered (a refusal, not held)');
    assert.equal(answer.status, 403, answer.body);
    assert.match(answer.body, /"proxy\.example\.test" is a name the proxy itself answers to/);
  });

  it("a client holding the name operators use never gets the operator's requests; nginx-style scrapes still reach clients", async () => {
    const seen: string[] = [];
    const target = await startTarget((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? '-'}`);
      res.end(`target ${req.url}`);
    }, after);
    const { proxy, port, url } = await startProxy(after, {
      clientGrants: [{ names: ['*'], tokenSha256: sha256('anyone') }],
      scrapers: [{ bearerSha256: sha256('scrape') }],
      operators: [{ bearerSha256: sha256('ops') }],
    });
    // Registered before anyone reached the proxy by that name, so it is not known yet.
    await startClient(after, {
      proxyUrl: new URL(url),
      token: 'anyone',
      names: ['vps.example.com', 'pi'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const host = `vps.example.com:${target.port}`;
    for (const path of ['/clients', '/', '/metrics', '/api/v1/clients', '/-/healthy']) {
      // The operator: Authorization, no Proxy-Authorization.
      const own = await getOrigin(port, path, { host, authorization: 'Bearer ops' });
      assert.equal(own.status, 200, `${path}: ${own.body}`);
    }
    // A PushProx client's poll (its token in Authorization) is never a scrape either.
    let pollSocket: net.Socket | undefined;
    const poll = rawExchange(
      port,
      goPost(port, '/poll', 'x.example', basicAuth('x', 'anyone'))
        .toString()
        .replace(`Host: 127.0.0.1:${port}`, `Host: ${host}`),
      { timeoutMs: 5000, onSocket: (socket) => (pollSocket = socket) },
    ).catch(() => Buffer.alloc(0));
    await eventually(() => proxy.registry.lookup('x.example') !== undefined, 5000, 'a held poll');
    pollSocket?.destroy();
    await poll;
    assert.deepEqual(seen, [], 'nothing reached the client');
    // The proxy now knows that name as its own: the client holding it was let go.
    await eventually(() => proxy.registry.lookup('vps.example.com') === undefined, 5000, 'drop');
    const again = await tunnelAttempt(port, {
      registration: registration(['vps.example.com']),
      token: 'anyone',
    });
    assert.equal(again.status, 403, again.body);
    // A scrape as nginx passes it on (origin form, Host the target, Proxy-Authorization).
    const piSeen: string[] = [];
    const target2 = await startTarget((req, res) => {
      piSeen.push(req.headers.authorization ?? '-');
      res.end(`pi ${req.url}`);
    }, after);
    await startClient(after, {
      proxyUrl: new URL(url),
      token: 'anyone',
      names: ['pi'],
      allow: [{ host: '127.0.0.1', port: target2.port }],
    });
    for (const path of ['/metrics', '/federate?match[]=up']) {
      const scrape = await getOrigin(port, path, {
        host: `pi:${target2.port}`,
        authorization: 'Bearer for-the-target',
        'proxy-authorization': 'Bearer scrape',
      });
      assert.equal(scrape.status, 200, scrape.body);
      assert.equal(scrape.body, `pi ${path}`);
    }
    // With scraper credentials and the operator's Authorization: refused, never forwarded.
    const both = await getOrigin(port, '/metrics', {
      host: `pi:${target2.port}`,
      authorization: 'Bearer ops',
      'proxy-authorization': 'Bearer scrape',
    });
    assert.equal(both.status, 403, both.body);
    assert.match(both.body, /never forwards operator credentials to a client/);
    assert.deepEqual(piSeen, ['Bearer for-the-target', 'Bearer for-the-target']);
  });
});
