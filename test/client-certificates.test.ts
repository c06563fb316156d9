/**
 * TLS client certificates instead of tokens: a `clients:` grant names a certificate by its
 * subject (signed by tls.client_ca_file) or pins it by fingerprint. Native tunnels and
 * PushProx long-poll clients authenticate with it; tokens, scrapers and operators on the same
 * listener keep working without one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { ClientGrant } from '../src/auth/client-grants.js';
import { resolveClientSettings } from '../src/config/client-settings.js';
import { resolveProxySettings } from '../src/config/proxy-settings.js';
import { ConfigError } from '../src/errors.js';
import { NatproxClient, type ClientOptions } from '../src/index.js';
import type { StatusReport } from '../src/proxy/status/status-report.js';
import {
  eventually,
  readBody,
  spawnNatprox,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { scrapeThroughTls } from './helpers/raw-http.js';
import { createTestCa, type CertFiles, type TestCa } from './helpers/tls-fixtures.js';
import { pinOf, sha256 } from './helpers/hashes.js';

const NAME = 'pi.home.example';
const TOKEN = 'token-for-the-laptop-5d2c9a';

const FAST_RETRY = { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 };

describe('client certificates', () => {
  let clientCa: TestCa;
  let otherCa: TestCa;
  let serverCert: CertFiles;
  let piCert: CertFiles;
  let strangerCert: CertFiles;
  let forgedPiCert: CertFiles;

  before(() => {
    clientCa = createTestCa('client-ca');
    otherCa = createTestCa('other-ca');
    serverCert = clientCa.issue('proxy');
    piCert = clientCa.issue('pi', [NAME]);
    strangerCert = clientCa.issue('stranger', ['stranger.home.example']);
    // The right subject, from a CA the proxy does not trust.
    forgedPiCert = otherCa.issue('forged-pi', [NAME]);
  });
  after(() => {
    clientCa.remove();
    otherCa.remove();
  });

  async function certProxy(grants: ClientGrant[]) {
    const target = await startTarget((_req, res) => res.end('cert_metric 1\n'), after);
    const started = await startProxy(after, {
      tls: {
        cert: serverCert.cert,
        key: serverCert.key,
        clientCa: clientCa.cert,
        requestClientCert: true,
      },
      clientGrants: grants,
    });
    const rejections: string[] = [];
    started.proxy.events.on('tunnelRejected', ({ reason }) => rejections.push(reason));
    return {
      ...started,
      target,
      rejections,
      httpsUrl: new URL(`https://127.0.0.1:${started.port}`),
      allow: [{ host: '127.0.0.1', port: target.port }],
    };
  }

  const bySubject: ClientGrant[] = [
    { names: [NAME], certSubject: NAME },
    { names: ['laptop'], tokenSha256: sha256(TOKEN) },
  ];

  /** A client expected to be refused: returns the error of its second failed attempt. */
  async function refusedClient(
    t: TestContext,
    options: Partial<ClientOptions> & Pick<ClientOptions, 'proxyUrl' | 'allow'>,
  ): Promise<string> {
    const client = new NatproxClient({ names: [NAME], backoff: FAST_RETRY, ...options });
    let failures = 0;
    let last = '';
    client.events.on('state', (state) => {
      if (state.state === 'reconnecting') {
        failures += 1;
        last = state.lastError;
      }
    });
    client.start();
    t.after(() => client.stop(0));
    await eventually(() => failures >= 2, 10_000, 'two refused attempts');
    return last;
  }

  it('a native client with a certificate the client CA signed for its name connects and serves scrapes, without a token', async () => {
    const { port, httpsUrl, allow, target, proxy } = await certProxy(bySubject);
    await startClient(after, {
      proxyUrl: httpsUrl,
      names: [NAME],
      allow,
      tls: { ca: clientCa.cert, cert: piCert.cert, key: piCert.key },
    });
    const result = await scrapeThroughTls(port, `http://${NAME}:${target.port}/metrics`, {
      ca: clientCa.cert,
    });
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'cert_metric 1\n');
    assert.deepEqual(
      proxy.registry.all().map((session) => session.grantKey),
      [`cert-subject:${NAME}`],
    );
    const report = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port,
            path: '/api/v1/clients',
            ca: clientCa.cert,
            servername: 'localhost',
          },
          (res) => readBody(res).then((body) => resolve(body.toString()), reject),
        )
        .on('error', reject);
    });
    const listed = (JSON.parse(report) as StatusReport).clients.map((c) => [c.names[0], c.auth]);
    assert.deepEqual(listed, [[NAME, 'certificate']], 'the status data says how it authenticated');
  });

  it('token clients and certificate-less scrapers still work on a listener that asks for certificates', async () => {
    const { port, httpsUrl, allow, target } = await certProxy(bySubject);
    await startClient(after, {
      proxyUrl: httpsUrl,
      names: ['laptop'],
      allow,
      token: TOKEN,
      tls: { ca: clientCa.cert },
    });
    const result = await scrapeThroughTls(port, `http://laptop:${target.port}/metrics`, {
      ca: clientCa.cert,
    });
    assert.equal(result.status, 200, result.body);
  });

  it('the right subject from another CA is refused with 401 and the reason', async (t) => {
    const { httpsUrl, allow, proxy, rejections } = await certProxy(bySubject);
    const error = await refusedClient(t, {
      proxyUrl: httpsUrl,
      allow,
      tls: { ca: clientCa.cert, cert: forgedPiCert.cert, key: forgedPiCert.key },
    });
    assert.match(error, /401/);
    assert.match(error, /not signed by the proxy's client CA/);
    assert.equal(proxy.registry.size, 0);
    assert.ok(rejections.length >= 2);
  });

  it('a signed certificate may register only the names its grant gives (403)', async (t) => {
    const { httpsUrl, allow, proxy } = await certProxy([
      { names: [NAME], certSubject: NAME },
      { names: ['stranger.home.example'], certSubject: 'stranger.home.example' },
    ]);
    const error = await refusedClient(t, {
      proxyUrl: httpsUrl,
      names: [NAME],
      allow,
      tls: { ca: clientCa.cert, cert: strangerCert.cert, key: strangerCert.key },
    });
    assert.match(error, /403/);
    assert.match(
      error,
      /this client certificate may not register "pi\.home\.example"; it grants stranger\.home\.example/,
    );
    assert.equal(proxy.registry.size, 0);
  });

  it('a signed certificate that no grant names is refused: a CA signature alone grants nothing', async (t) => {
    const { httpsUrl, allow, proxy } = await certProxy(bySubject);
    const error = await refusedClient(t, {
      proxyUrl: httpsUrl,
      names: ['stranger.home.example'],
      allow,
      tls: { ca: clientCa.cert, cert: strangerCert.cert, key: strangerCert.key },
    });
    assert.match(error, /401/);
    assert.match(error, /no clients: entry names its subject \(stranger\.home\.example\)/);
    assert.equal(proxy.registry.size, 0);
  });

  it('without token or certificate the refusal says both ways in', async (t) => {
    const { httpsUrl, allow } = await certProxy(bySubject);
    const error = await refusedClient(t, { proxyUrl: httpsUrl, allow, tls: { ca: clientCa.cert } });
    assert.match(error, /401/);
    assert.match(error, /--token-file\) or a client certificate \(--cert-file and --key-file\)/);
  });

  it('a pinned certificate (cert_sha256) is accepted whoever signed it; another is not', async (t) => {
    const { port, httpsUrl, allow, target } = await certProxy([
      { names: [NAME], certSha256: pinOf(forgedPiCert.fingerprint256) },
    ]);
    await startClient(after, {
      proxyUrl: httpsUrl,
      names: [NAME],
      allow,
      tls: { ca: clientCa.cert, cert: forgedPiCert.cert, key: forgedPiCert.key },
    });
    const result = await scrapeThroughTls(port, `http://${NAME}:${target.port}/metrics`, {
      ca: clientCa.cert,
    });
    assert.equal(result.status, 200, result.body);
    const error = await refusedClient(t, {
      proxyUrl: httpsUrl,
      names: [NAME],
      allow,
      tls: { ca: clientCa.cert, cert: piCert.cert, key: piCert.key },
    });
    assert.match(error, /401/);
  });

  it('a reload that drops the grant disconnects the certificate client; turning certificates off needs a restart', async () => {
    const { proxy, httpsUrl, allow } = await certProxy(bySubject);
    await startClient(after, {
      proxyUrl: httpsUrl,
      names: [NAME],
      allow,
      backoff: FAST_RETRY,
      tls: { ca: clientCa.cert, cert: piCert.cert, key: piCert.key },
    });
    const base = {
      listen: { host: '127.0.0.1', port: 0 },
      defaultScrapeTimeoutMs: 5000,
      maxScrapeTimeoutMs: 60_000,
    };
    const tls = {
      cert: serverCert.cert,
      key: serverCert.key,
      clientCa: clientCa.cert,
      requestClientCert: true,
    };
    // The listen address is compared as configured: port 0 here, as in startProxy.
    assert.throws(
      () =>
        proxy.reload({
          ...base,
          tls: { ...tls, requestClientCert: false },
          clientGrants: bySubject,
        }),
      /client certificates were requested and would be not requested.*needs a restart/,
    );
    assert.equal(proxy.registry.size, 1, 'a refused reload changes nothing');
    proxy.reload({ ...base, tls, clientGrants: bySubject.slice(1) });
    await eventually(
      () => proxy.registry.size === 0,
      5000,
      'the certificate client to be disconnected',
    );
    // It reconnects and is refused now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(proxy.registry.size, 0);
  });

  describe('PushProx long-poll clients', () => {
    function poll(
      port: number,
      cert: CertFiles | undefined,
    ): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = https.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/poll',
          servername: 'localhost',
          ca: clientCa.cert,
          ...(cert ? { cert: cert.cert, key: cert.key } : {}),
          agent: false,
          timeout: 5000,
        });
        req.once('timeout', () => req.destroy(new Error('poll timed out')));
        req.once('error', reject);
        req.once('response', (res) => {
          readBody(res).then(
            (body) => resolve({ status: res.statusCode ?? 0, body: body.toString() }),
            reject,
          );
        });
        req.end(NAME);
      });
    }

    it('a PushProx client with a signed certificate polls, is listed and serves a scrape (natprox client --transport pushprox)', async () => {
      const { port, httpsUrl, allow, target, proxy } = await certProxy(bySubject);
      await startClient(after, {
        proxyUrl: httpsUrl,
        transport: 'pushprox',
        names: [NAME],
        allow,
        tls: { ca: clientCa.cert, cert: piCert.cert, key: piCert.key },
      });
      await eventually(() => proxy.registry.size === 1, 5000, 'the long-poll client to be listed');
      const [session] = proxy.registry.all();
      assert.equal(session?.transport, 'pushprox');
      const result = await scrapeThroughTls(port, `http://${NAME}:${target.port}/metrics`, {
        ca: clientCa.cert,
      });
      assert.equal(result.status, 200, result.body);
      assert.equal(result.body, 'cert_metric 1\n');
    });

    it('a poll without credentials, or with a certificate from another CA, gets 401 with the reason', async () => {
      const { port, proxy } = await certProxy(bySubject);
      const bare = await poll(port, undefined);
      assert.equal(bare.status, 401);
      assert.match(bare.body, /or a client certificate \(--tls\.cert and --tls\.key\)/);
      const forged = await poll(port, forgedPiCert);
      assert.equal(forged.status, 401);
      assert.match(forged.body, /not signed by the proxy's client CA/);
      const stranger = await poll(port, strangerCert);
      assert.equal(stranger.status, 401, stranger.body);
      assert.equal(proxy.registry.size, 0);
    });
  });

  it('natprox check reports the certificate as accepted (dry run, nothing registered)', async () => {
    const { httpsUrl, allow, proxy } = await certProxy(bySubject);
    const check = spawnNatprox(
      [
        'check',
        '--proxy-url',
        httpsUrl.href,
        '--name',
        NAME,
        '--allow',
        String(allow[0]?.port),
        '--ca-file',
        clientCa.certFile,
        '--cert-file',
        piCert.certFile,
        '--key-file',
        piCert.keyFile,
      ],
      after,
    );
    const code = await within(check.exited, 20_000, 'natprox check to exit');
    const output = check.output();
    assert.equal(code, 0, output);
    assert.match(
      output,
      /✔ authentication: client certificate accepted; may register pi\.home\.example/,
    );
    assert.equal(proxy.registry.size, 0);
  });
});

describe('client certificate configuration', () => {
  let dir: string;
  let ca: TestCa;
  let cert: CertFiles;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natprox-cert-config-'));
    ca = createTestCa('ca');
    cert = ca.issue('pi', [NAME]);
  });
  after(async () => {
    ca.remove();
    await rm(dir, { recursive: true, force: true });
  });

  async function proxyConfig(text: string): Promise<string> {
    const file = join(dir, `proxy-${Math.random().toString(36).slice(2)}.yml`);
    await writeFile(file, text);
    return file;
  }

  const tlsBlock = (extra = ''): string =>
    `tls:\n  cert_file: ${cert.certFile}\n  key_file: ${cert.keyFile}\n${extra}`;

  it('loads cert_subject and cert_sha256 grants and asks for client certificates', async () => {
    const file = await proxyConfig(
      `${tlsBlock(`  client_ca_file: ${ca.certFile}\n`)}clients:\n  - names: [${NAME}]\n    cert_subject: PI.home.example\n  - names: [nas]\n    cert_sha256: "${cert.fingerprint256}"\n`,
    );
    const settings = resolveProxySettings({ config: file });
    assert.deepEqual(settings.proxy.clientGrants, [
      { names: [NAME], certSubject: NAME },
      { names: ['nas'], certSha256: pinOf(cert.fingerprint256) },
    ]);
    assert.equal(settings.proxy.tls?.requestClientCert, true);
    assert.ok(settings.proxy.tls?.clientCa?.equals(ca.cert));
  });

  it('refuses cert_subject without tls.client_ca_file, certificate grants without tls:, and entries with two or no credentials', async () => {
    const cases: [string, RegExp][] = [
      [
        `${tlsBlock()}clients:\n  - names: [${NAME}]\n    cert_subject: ${NAME}\n`,
        /clients\[0\]: cert_subject needs tls\.client_ca_file/,
      ],
      [
        `clients:\n  - names: [${NAME}]\n    cert_sha256: "${cert.fingerprint256}"\n`,
        /clients\[0\]: a client certificate needs TLS on the proxy/,
      ],
      [
        `clients:\n  - names: [${NAME}]\n    token_sha256: ${sha256('x')}\n    cert_subject: ${NAME}\n`,
        /clients\[0\].*expected exactly one of token_sha256.*got token_sha256 and cert_subject/,
      ],
      [`clients:\n  - names: [${NAME}]\n`, /clients\[0\].*expected exactly one of .*got none/],
      [
        `${tlsBlock(`  client_ca_file: ${cert.keyFile}\n`)}`,
        /tls\.client_ca_file: .* does not load/,
      ],
    ];
    for (const [text, expected] of cases) {
      const file = await proxyConfig(text);
      assert.throws(
        () => resolveProxySettings({ config: file }),
        (err: unknown) => err instanceof ConfigError && expected.test(err.message),
        text,
      );
    }
  });

  it('the client needs both --cert-file and --key-file, on an https:// proxy URL', () => {
    const base = { allow: ['9100'], name: [NAME] };
    assert.throws(
      () =>
        resolveClientSettings({
          ...base,
          'proxy-url': 'https://vps.example',
          'cert-file': cert.certFile,
        }),
      /--cert-file: a client certificate needs both --cert-file and --key-file/,
    );
    assert.throws(
      () =>
        resolveClientSettings({
          ...base,
          'proxy-url': 'http://vps.example',
          'cert-file': cert.certFile,
          'key-file': cert.keyFile,
        }),
      /apply to https:\/\/ proxy URLs/,
    );
    assert.throws(
      () =>
        resolveClientSettings({
          ...base,
          'proxy-url': 'https://vps.example',
          'cert-file': cert.keyFile,
          'key-file': cert.keyFile,
        }),
      /--cert-file: .* holds no PEM certificate/,
    );
    const settings = resolveClientSettings({
      ...base,
      'proxy-url': 'https://vps.example',
      'cert-file': cert.certFile,
      'key-file': cert.keyFile,
    });
    assert.ok(settings.client.tls?.cert?.equals(cert.cert));
    assert.ok(settings.client.tls?.key?.equals(cert.key));
  });
});
