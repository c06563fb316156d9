/**
 * Security: TLS on the tunnel (the client verifies the proxy by CA or pinned fingerprint and
 * sends its token only after that), CONNECT for https targets end to end, and SIGHUP reloads
 * of credentials and the certificate in a real proxy process.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { NatproxClient, type ClientOptions } from '../src/index.js';
import {
  eventually,
  spawnNatprox,
  startClient,
  startProxy,
  startTarget,
  within,
  type NatproxProcess,
} from './helpers/loopback.js';
import { records, type LogRecord, count } from './helpers/log-records.js';
import {
  connectThrough,
  httpsGetOver,
  peerFingerprint,
  scrapeThroughTls,
} from './helpers/raw-http.js';
import { createTestCa, type CertFiles, type TestCa } from './helpers/tls-fixtures.js';
import { pinOf, sha256 } from './helpers/hashes.js';

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

const FAST_RETRY = { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 };

/** A client that is expected not to connect: started here, stopped at the end of the test. */
function startFailingClient(
  t: TestContext,
  options: Partial<ClientOptions> & Pick<ClientOptions, 'proxyUrl' | 'allow'>,
): NatproxClient {
  const client = new NatproxClient({ names: ['demo'], backoff: FAST_RETRY, ...options });
  client.start();
  t.after(() => client.stop(0));
  return client;
}

/** Waits for the client's `n`-th failed attempt and returns its error text. */
async function nthFailure(client: NatproxClient, n: number): Promise<string> {
  let failures = 0;
  let last = '';
  const onState = (state: NatproxClient['state']): void => {
    if (state.state === 'reconnecting') {
      failures += 1;
      last = state.lastError;
    }
  };
  client.events.on('state', onState);
  try {
    await eventually(() => failures >= n, 10_000, `failed attempt #${n}`);
  } finally {
    client.events.off('state', onState);
  }
  assert.notEqual(client.state.state, 'connected');
  return last;
}

const TOKEN = 'tls-client-token-6b1f0c2d9e';

describe('TLS between client and proxy', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let proxyCert: CertFiles;
  before(() => {
    ca = createTestCa('ca');
    otherCa = createTestCa('other');
    proxyCert = ca.issue('proxy');
  });
  after(() => {
    ca.remove();
    otherCa.remove();
  });

  async function tlsSetup() {
    const target = await startTarget((_req, res) => res.end('tls_metric 1\n'), after);
    const started = await startProxy(after, {
      tls: { cert: proxyCert.cert, key: proxyCert.key },
      clientGrants: [{ tokenSha256: sha256(TOKEN), names: ['demo'] }],
    });
    const events = { connected: 0, rejected: 0 };
    started.proxy.events.on('tunnelConnected', () => (events.connected += 1));
    started.proxy.events.on('tunnelRejected', () => (events.rejected += 1));
    return {
      ...started,
      target,
      events,
      httpsUrl: new URL(`https://127.0.0.1:${started.port}`),
      allow: [{ host: '127.0.0.1', port: target.port }],
    };
  }

  it('a client trusting the test CA connects over TLS and serves scrapes', async () => {
    const { port, httpsUrl, allow, target, events } = await tlsSetup();
    await startClient(after, { proxyUrl: httpsUrl, allow, token: TOKEN, tls: { ca: ca.cert } });
    const result = await scrapeThroughTls(port, `http://demo:${target.port}/metrics`, {
      ca: ca.cert,
    });
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'tls_metric 1\n');
    assert.equal(result.fingerprint256, proxyCert.fingerprint256);
    assert.equal(events.connected, 1);
  });

  it('a client trusting another CA never connects, says why, and never sends its token', async (t) => {
    const { proxy, httpsUrl, allow, events } = await tlsSetup();
    const client = startFailingClient(t, {
      proxyUrl: httpsUrl,
      allow,
      token: TOKEN,
      tls: { ca: otherCa.cert },
    });
    const error = await nthFailure(client, 3);
    assert.match(error, /TLS with 127\.0\.0\.1:\d+ failed/);
    assert.match(error, /certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    // The proxy never saw a tunnel request: no upgrade, so no token either.
    assert.equal(events.rejected, 0);
    assert.equal(events.connected, 0);
    assert.equal(proxy.registry.size, 0);
  });

  it('the token is not written to a server that fails verification (raw TLS listener sees no bytes)', async (t) => {
    const received: Buffer[] = [];
    let connections = 0;
    const server = tls.createServer({ cert: proxyCert.cert, key: proxyCert.key }, (socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('error', () => {});
    });
    server.on('connection', () => (connections += 1));
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;
    const client = startFailingClient(t, {
      proxyUrl: new URL(`https://127.0.0.1:${port}`),
      allow: [{ host: '127.0.0.1', port: 9 }],
      token: TOKEN,
      tls: { ca: otherCa.cert },
    });
    const error = await nthFailure(client, 2);
    assert.match(error, /certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = Buffer.concat(received).toString('latin1');
    assert.ok(connections >= 2, 'the client did reach the listener, twice');
    assert.ok(!text.includes(TOKEN), `the token reached an unverified server: ${text}`);
    assert.equal(text, '', 'nothing at all is sent before verification');
  });

  it('a pinned fingerprint is enough, without the CA', async () => {
    const { port, httpsUrl, allow, target } = await tlsSetup();
    await startClient(after, {
      proxyUrl: httpsUrl,
      allow,
      token: TOKEN,
      tls: { pinSha256: pinOf(proxyCert.fingerprint256) },
    });
    const result = await scrapeThroughTls(port, `http://demo:${target.port}/metrics`, {
      ca: ca.cert,
    });
    assert.equal(result.status, 200, result.body);
  });

  it('a wrong pin fails, naming both fingerprints; the token is not sent', async (t) => {
    const { httpsUrl, allow, events } = await tlsSetup();
    const wrongPin = pinOf(otherCa.fingerprint256);
    const client = startFailingClient(t, {
      proxyUrl: httpsUrl,
      allow,
      token: TOKEN,
      // Even with the right CA: the pin decides.
      tls: { ca: ca.cert, pinSha256: wrongPin },
    });
    const error = await nthFailure(client, 2);
    assert.ok(error.includes(wrongPin), error);
    assert.ok(error.includes(pinOf(proxyCert.fingerprint256)), error);
    assert.equal(events.rejected, 0);
    assert.equal(events.connected, 0);
  });

  it('an https:// proxy URL without CA or pin is checked against the system CAs: the test CA fails', async (t) => {
    const { httpsUrl, allow, events } = await tlsSetup();
    const client = startFailingClient(t, { proxyUrl: httpsUrl, allow, token: TOKEN });
    const error = await nthFailure(client, 2);
    assert.match(error, /certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    assert.match(error, /--ca-file|--tls-fingerprint/);
    assert.equal(events.rejected, 0);
    assert.equal(events.connected, 0);
  });
});

describe('CONNECT: https targets end to end', () => {
  let ca: TestCa;
  let targetCert: CertFiles;
  before(() => {
    ca = createTestCa('ca');
    targetCert = ca.issue('target', ['demo', 'localhost', '127.0.0.1']);
  });
  after(() => ca.remove());

  async function httpsTarget(t: TestContext): Promise<{ port: number; hits: () => number }> {
    let hits = 0;
    const server = https.createServer(
      { cert: targetCert.cert, key: targetCert.key },
      (_req, res) => {
        hits += 1;
        res.end('secure_metric 1\n');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    return { port: (server.address() as AddressInfo).port, hits: () => hits };
  }

  it('an https target is scraped via CONNECT; TLS runs end to end with the target', async (t) => {
    const target = await httpsTarget(t);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const tunnel = await connectThrough(port, `demo:${target.port}`);
    assert.equal(tunnel.status, 200, tunnel.head.toString());
    const result = await httpsGetOver(tunnel.socket, {
      servername: 'demo',
      ca: ca.cert,
      path: '/metrics',
    });
    assert.equal(result.status, 200);
    assert.equal(result.body, 'secure_metric 1\n');
    // The scraper saw the target's own certificate: nothing in between terminated TLS.
    assert.equal(result.peerFingerprint, targetCert.fingerprint256);
    assert.equal(target.hits(), 1);
  });

  it('CONNECT to a port not on the allowlist, or one limited to paths, gets 403 with the reason and its code; an unknown name 503', async (t) => {
    const allowed = await httpsTarget(t);
    const forbidden = await httpsTarget(t);
    const limited = await httpsTarget(t);
    const { proxy, port, url } = await startProxy(after);
    const client = await startClient(after, {
      proxyUrl: new URL(url),
      allow: [
        { host: '127.0.0.1', port: allowed.port },
        { host: '127.0.0.1', port: limited.port, pathPrefixes: ['/metrics'] },
      ],
    });
    const served: string[] = [];
    client.events.on('scrapeServed', (info) => served.push(info.outcome));
    const outcomes: string[] = [];
    proxy.events.on('httpsConnectFinished', (info) => outcomes.push(info.outcome));

    const other = await connectThrough(port, `demo:${forbidden.port}`);
    other.socket.destroy();
    assert.equal(other.status, 403, other.head.toString());
    assert.match(other.head.toString(), /not on this client's allowlist/);
    assert.equal(other.headers['x-natprox-error'], 'NATPROX_TARGET_FORBIDDEN');

    const paths = await connectThrough(port, `demo:${limited.port}`);
    paths.socket.destroy();
    assert.equal(paths.status, 403, paths.head.toString());
    assert.match(paths.head.toString(), /only for some paths/);
    const unknown = await connectThrough(port, `nobody:${allowed.port}`);
    unknown.socket.destroy();
    assert.equal(unknown.status, 503, unknown.head.toString());
    assert.equal(unknown.headers['x-natprox-error'], 'NATPROX_NO_CLIENT');

    assert.equal(forbidden.hits(), 0);
    assert.equal(limited.hits(), 0);
    assert.deepEqual(served, ['forbidden', 'forbidden']);
    await eventually(() => outcomes.length === 3, 2000, 'all three CONNECTs reported');
    assert.deepEqual(outcomes, ['forbidden', 'forbidden', 'no_client']);
  });
});

async function waitForCount(
  proc: NatproxProcess,
  msg: string,
  n: number,
  timeoutMs = 20_000,
): Promise<LogRecord> {
  await eventually(() => count(proc, msg) >= n, timeoutMs, `log line #${n} "${msg}"`).catch(
    (err: Error) => {
      throw new Error(`${err.message}; output:\n${proc.output()}`);
    },
  );
  return records(proc).filter((record) => record.msg === msg)[n - 1] as LogRecord;
}

describe('SIGHUP reload of a real proxy process (--config)', { timeout: 60_000 }, () => {
  const USER_A = 'prom-a';
  const PASS_A = 'pass-a-1x';
  const USER_B = 'prom-b';
  const PASS_B = 'pass-b-2y';
  const OTHER_TOKEN = 'some-other-client-token';
  let dir: string;
  let ca: TestCa;
  let first: CertFiles;
  let config: string;
  let certFile: string;
  let keyFile: string;
  let proxy: NatproxProcess;
  let client: NatproxProcess;
  let port: number;
  let targetPort: number;
  let reloads = 0;
  let rejectedReloads = 0;
  /** Teardowns of what before() starts, run by after(): `after` called inside a hook would run too early. */
  const teardowns: Array<() => unknown> = [];
  const teardown = (fn: () => unknown): void => {
    teardowns.push(fn);
  };

  function configText(options: { scrapers: Array<[string, string]>; clientToken: string }) {
    return [
      'listen: 127.0.0.1:0',
      'tls:',
      `  cert_file: ${certFile}`,
      `  key_file: ${keyFile}`,
      'clients:',
      '  - names: ["demo"]',
      `    token_sha256: "${sha256(options.clientToken)}"`,
      'scrapers:',
      ...options.scrapers.flatMap(([user, pass]) => [
        `  - username: ${user}`,
        `    password_sha256: "${sha256(pass)}"`,
      ]),
      '',
    ].join('\n');
  }

  async function reload(expect: 'reloaded' | 'rejected'): Promise<LogRecord> {
    proxy.child.kill('SIGHUP');
    if (expect === 'reloaded') {
      reloads += 1;
      return waitForCount(proxy, 'config and certificate reloaded', reloads);
    }
    rejectedReloads += 1;
    return waitForCount(
      proxy,
      'reload rejected: the previous config stays in force',
      rejectedReloads,
    );
  }

  function scrapeAs(user: string, pass: string) {
    return within(
      scrapeThroughTls(port, `http://demo:${targetPort}/metrics`, {
        ca: ca.cert,
        headers: { 'proxy-authorization': basic(user, pass) },
      }),
      5000,
      `scrape as ${user}`,
    );
  }

  /** The remote address the proxy lists for demo in /clients (operators follow scrapers). */
  async function demoEntry(): Promise<string | undefined> {
    const result = await within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.get(
          {
            host: '127.0.0.1',
            port,
            path: '/clients',
            ca: ca.cert,
            agent: false,
            headers: { authorization: basic(USER_A, PASS_A) },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.once('error', reject);
      }),
      5000,
      '/clients',
    );
    assert.equal(result.status, 200, result.body);
    const groups = JSON.parse(result.body) as Array<{ labels: Record<string, string> }>;
    return groups.find((g) => g.labels.__meta_natprox_name === 'demo')?.labels
      .__meta_natprox_remote_address;
  }

  function assertClientNeverReconnected(): void {
    assert.equal(count(client, 'tunnel connected'), 1, client.output());
    assert.equal(count(client, 'tunnel down, reconnecting'), 0, client.output());
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natprox-reload-'));
    ca = createTestCa('ca');
    first = ca.issue('first');
    certFile = join(dir, 'tls.crt');
    keyFile = join(dir, 'tls.key');
    await copyFile(first.certFile, certFile);
    await copyFile(first.keyFile, keyFile);
    config = join(dir, 'proxy.yaml');
    await writeFile(config, configText({ scrapers: [[USER_A, PASS_A]], clientToken: TOKEN }));
    const target = await startTarget((_req, res) => res.end('reload_metric 1\n'), teardown);
    targetPort = target.port;
    proxy = spawnNatprox(['proxy', '--config', config], teardown);
    const listening = await waitForCount(proxy, 'proxy listening', 1);
    port = Number(/:(\d+)$/.exec(String(listening.address))?.[1]);
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    client = spawnNatprox(
      [
        'client',
        '--proxy-url',
        `https://127.0.0.1:${port}`,
        '--ca-file',
        ca.certFile,
        '--token-file',
        tokenFile,
        '--name',
        'demo',
        '--allow',
        String(targetPort),
      ],
      teardown,
    );
    await waitForCount(client, 'tunnel connected', 1);
  });
  after(async () => {
    for (const fn of teardowns.reverse()) await fn();
    ca.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('a scraper credential added to the file works after SIGHUP; the client stays connected', async () => {
    assert.equal((await scrapeAs(USER_A, PASS_A)).status, 200);
    assert.equal((await scrapeAs(USER_B, PASS_B)).status, 407);
    const entryBefore = await demoEntry();
    assert.ok(entryBefore);

    await writeFile(
      config,
      configText({
        scrapers: [
          [USER_A, PASS_A],
          [USER_B, PASS_B],
        ],
        clientToken: TOKEN,
      }),
    );
    await reload('reloaded');
    const viaB = await scrapeAs(USER_B, PASS_B);
    assert.equal(viaB.status, 200, viaB.body);
    assert.equal(viaB.body, 'reload_metric 1\n');
    assert.equal((await scrapeAs(USER_A, PASS_A)).status, 200);
    assert.equal(await demoEntry(), entryBefore, 'same /clients entry: same connection');
    assertClientNeverReconnected();
  });

  it('a bad config (invalid YAML, or a bad hash) is rejected with a log line; the old one stays', async () => {
    await writeFile(config, 'scrapers: [\n  - username: x\n');
    const rejected = await reload('rejected');
    assert.ok(String(rejected.reason).length > 0, JSON.stringify(rejected));
    assert.equal((await scrapeAs(USER_A, PASS_A)).status, 200);
    assert.equal((await scrapeAs(USER_B, PASS_B)).status, 200);

    await writeFile(
      config,
      configText({ scrapers: [[USER_A, PASS_A]], clientToken: TOKEN }).replace(
        sha256(PASS_A),
        'not-a-hash',
      ),
    );
    const badHash = await reload('rejected');
    assert.match(String(badHash.reason), /64 lowercase hex/);
    assert.equal((await scrapeAs(USER_B, PASS_B)).status, 200, 'the previous config is in force');
    assertClientNeverReconnected();
  });

  it('a certificate swap: new TLS connections get the new certificate, the tunnel stays up', async () => {
    await writeFile(
      config,
      configText({
        scrapers: [
          [USER_A, PASS_A],
          [USER_B, PASS_B],
        ],
        clientToken: TOKEN,
      }),
    );
    assert.equal(await peerFingerprint(port, ca.cert), first.fingerprint256);
    const second = ca.issue('second');
    assert.notEqual(second.fingerprint256, first.fingerprint256);
    await copyFile(second.certFile, certFile);
    await copyFile(second.keyFile, keyFile);
    await reload('reloaded');
    assert.equal(await peerFingerprint(port, ca.cert), second.fingerprint256);
    const scrape = await scrapeAs(USER_A, PASS_A);
    assert.equal(scrape.status, 200, scrape.body);
    assert.equal(scrape.fingerprint256, second.fingerprint256);
    assertClientNeverReconnected();

    // A key that does not belong to the certificate is refused; the new one stays in use.
    await copyFile(first.keyFile, keyFile);
    await reload('rejected');
    assert.equal(await peerFingerprint(port, ca.cert), second.fingerprint256);
    await copyFile(second.keyFile, keyFile);
  });

  it("removing the client's token from clients: disconnects that client on reload", async () => {
    const disconnectsBefore = count(proxy, 'client disconnected');
    await writeFile(config, configText({ scrapers: [[USER_A, PASS_A]], clientToken: OTHER_TOKEN }));
    await reload('reloaded');
    const line = await waitForCount(proxy, 'client disconnected', disconnectsBefore + 1, 5000);
    assert.match(String(line.reason), /no longer grants/);
    await eventually(
      async () => (await demoEntry()) === undefined,
      5000,
      'demo gone from /clients',
    );
    const scrape = await scrapeAs(USER_A, PASS_A);
    assert.equal(scrape.status, 503, scrape.body);
    // Its reconnect attempts are refused with 401 now.
    await eventually(
      () => records(proxy).some((r) => r.msg === 'client rejected' && r.status === 401),
      10_000,
      'the revoked client refused on reconnect',
    );
    assert.equal(count(client, 'tunnel connected'), 1);
  });
});
