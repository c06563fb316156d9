/**
 * `natprox check`: the real command, as a process, against real proxies, targets and a
 * reverse proxy on loopback; each failure named with what to do, and the dry run registering
 * nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { tlsOutcome } from '../src/check/tls-probe.js';
import { tunnelOutcomes } from '../src/check/tunnel-probe.js';
import {
  deadPort,
  getOrigin,
  scrapeThrough,
  spawnNatprox,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { createTestCa, type TestCa } from './helpers/tls-fixtures.js';
import { sha256 } from './helpers/hashes.js';

const TOKEN_DEMO = 'check-token-for-demo-0123456789abcdef';
const TOKEN_OTHER = 'check-token-for-other-0123456789abcdef';

const GRANTS = [
  { tokenSha256: sha256(TOKEN_DEMO), names: ['demo', 'demo-*'] },
  { tokenSha256: sha256(TOKEN_OTHER), names: ['other'] },
];

const metrics: RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('up 1\n');
};

interface CheckRun {
  code: number | null;
  /** Step lines ("✔ step: …", "✘ …", "- …"), without the hint lines. */
  steps: string[];
  output: string;
}

async function runCheck(args: string[]): Promise<CheckRun> {
  const proc = spawnNatprox(['check', ...args], after);
  const code = await within(proc.exited, 20_000, 'natprox check to exit');
  const output = proc.output();
  return {
    code,
    steps: output.split('\n').filter((line) => /^[✔✘-] /.test(line)),
    output,
  };
}

/** The step line for `step`, and the hint line after it (if any). */
function stepOf(run: CheckRun, step: string): { line: string; hint: string } {
  const lines = run.output.split('\n');
  const index = lines.findIndex((line) => line.slice(2).startsWith(`${step}:`));
  assert.ok(index >= 0, `no "${step}" line in:\n${run.output}`);
  const next = lines[index + 1] ?? '';
  return { line: lines[index] as string, hint: next.startsWith('  → ') ? next : '' };
}

describe('natprox check', () => {
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let demoTokenFile: string;
  let otherTokenFile: string;
  let cert: ReturnType<TestCa['issue']>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natprox-check-'));
    demoTokenFile = join(dir, 'demo.token');
    otherTokenFile = join(dir, 'other.token');
    await writeFile(demoTokenFile, `${TOKEN_DEMO}\n`);
    await writeFile(otherTokenFile, `${TOKEN_OTHER}\n`);
    ca = createTestCa('ca');
    otherCa = createTestCa('other-ca');
    cert = ca.issue('proxy');
  });
  after(async () => {
    ca.remove();
    otherCa.remove();
    await rm(dir, { recursive: true, force: true });
  });

  async function tlsProxy() {
    const started = await startProxy(after, {
      tls: { cert: cert.cert, key: cert.key },
      clientGrants: GRANTS,
    });
    return { ...started, url: `https://localhost:${started.port}` };
  }

  it('passes every step against a real TLS proxy and target: exit 0, every line ✔, nothing registered', async () => {
    const { proxy, url } = await tlsProxy();
    const target = await startTarget(metrics, after);
    const run = await runCheck([
      '--proxy-url',
      url,
      '--name',
      'demo',
      '--allow',
      String(target.port),
      '--token-file',
      demoTokenFile,
      '--ca-file',
      ca.certFile,
    ]);
    assert.equal(run.code, 0, run.output);
    assert.equal(run.steps.length, 7, run.output);
    for (const line of run.steps) assert.match(line, /^✔ /, run.output);
    assert.match(stepOf(run, 'DNS').line, /localhost → /);
    assert.match(stepOf(run, 'TLS').line, /chain verified against the CA file.*localhost matches/);
    // The test CA's certificates live 2 days: the expiry warning shows, the step passes.
    assert.match(stepOf(run, 'TLS').hint, /expires in [0-9] days?/);
    assert.match(stepOf(run, 'tunnel upgrade').line, /dry run: nothing registered/);
    assert.match(
      stepOf(run, 'authentication').line,
      /token accepted; may register demo, demo-\*; will register demo$/,
    );
    assert.match(
      stepOf(run, `target 127.0.0.1:${target.port}`).line,
      /GET \/metrics → 200 OK in \d+ ms/,
    );
    assert.equal(proxy.registry.size, 0);
  });

  it('a wrong token: ✔ upgrade, ✘ authentication with the token_sha256 to look for; exit 1', async () => {
    const { url } = await tlsProxy();
    const target = await startTarget(metrics, after);
    const wrong = join(dir, 'wrong.token');
    await writeFile(wrong, 'not-a-token-this-proxy-knows\n');
    const run = await runCheck(
      ['--proxy-url', url, '--name', 'demo', '--allow', String(target.port)].concat([
        '--token-file',
        wrong,
        '--ca-file',
        ca.certFile,
      ]),
    );
    assert.equal(run.code, 1, run.output);
    assert.match(stepOf(run, 'tunnel upgrade').line, /^✔ /);
    const auth = stepOf(run, 'authentication');
    assert.match(auth.line, /^✘ authentication: the proxy does not know this token \(HTTP 401\)/);
    assert.match(auth.hint, /--token-file/);
    assert.match(auth.hint, new RegExp(sha256('not-a-token-this-proxy-knows')));
    assert.doesNotMatch(run.output, /not-a-token-this-proxy-knows/);
    assert.match(stepOf(run, `target 127.0.0.1:${target.port}`).line, /^✔ /);
  });

  it('a token granted for other names: ✘ authentication naming the name and the grant', async () => {
    const { url } = await tlsProxy();
    const target = await startTarget(metrics, after);
    const run = await runCheck(
      ['--proxy-url', url, '--name', 'demo', '--allow', String(target.port)].concat([
        '--token-file',
        otherTokenFile,
        '--ca-file',
        ca.certFile,
      ]),
    );
    assert.equal(run.code, 1, run.output);
    const auth = stepOf(run, 'authentication');
    assert.match(
      auth.line,
      /^✘ authentication: this token may not register "demo"; it grants other/,
    );
    assert.match(auth.hint, /grant demo to this token/);
  });

  it('a certificate from another CA: ✘ TLS with the --ca-file hint; nothing sent, later steps not checked', async () => {
    const { proxy, url } = await tlsProxy();
    const target = await startTarget(metrics, after);
    const rejected: number[] = [];
    proxy.events.on('tunnelRejected', (info) => rejected.push(info.status));
    const run = await runCheck(
      ['--proxy-url', url, '--name', 'demo', '--allow', String(target.port)].concat([
        '--token-file',
        demoTokenFile,
        '--ca-file',
        otherCa.certFile,
      ]),
    );
    assert.equal(run.code, 1, run.output);
    const tls = stepOf(run, 'TLS');
    assert.match(tls.line, /^✘ TLS: .*not signed by a CA in the CA file/);
    assert.match(tls.hint, /--ca-file/);
    assert.match(tls.hint, /--tls-fingerprint/);
    assert.match(stepOf(run, 'tunnel upgrade').line, /^- tunnel upgrade: not checked \(TLS failed/);
    assert.match(stepOf(run, 'authentication').line, /^- authentication: not checked/);
    assert.deepEqual(rejected, [], 'no upgrade request reached the proxy');
  });

  it('a certificate for another name: ✘ TLS naming the names it is for', async () => {
    const wrongName = ca.issue('wrong-name', ['proxy.example']);
    const { port } = await startProxy(after, {
      tls: { cert: wrongName.cert, key: wrongName.key },
      clientGrants: GRANTS,
    });
    const target = await startTarget(metrics, after);
    const run = await runCheck(
      ['--proxy-url', `https://127.0.0.1:${port}`, '--name', 'demo'].concat([
        '--allow',
        String(target.port),
        '--token-file',
        demoTokenFile,
        '--ca-file',
        ca.certFile,
      ]),
    );
    assert.equal(run.code, 1, run.output);
    const tls = stepOf(run, 'TLS');
    assert.match(tls.line, /is for proxy\.example, not 127\.0\.0\.1/);
    assert.match(tls.hint, /use one of proxy\.example in --proxy-url/);
  });

  it('a pinned fingerprint passes without a CA; a wrong pin fails naming both fingerprints', async () => {
    const { url } = await tlsProxy();
    const target = await startTarget(metrics, after);
    const base = ['--proxy-url', url, '--name', 'demo', '--allow', String(target.port)];
    const pinned = await runCheck(
      base.concat(['--token-file', demoTokenFile, '--tls-fingerprint', cert.fingerprint256]),
    );
    assert.equal(pinned.code, 0, pinned.output);
    for (const line of pinned.steps) assert.match(line, /^✔ /, pinned.output);
    assert.match(stepOf(pinned, 'TLS').line, /the pinned certificate \(SHA-256 matches\)/);
    assert.match(stepOf(pinned, 'TLS').line, /not trusted by this machine's system CAs/);

    const wrongPin = await runCheck(
      base.concat(['--token-file', demoTokenFile, '--tls-fingerprint', otherCa.fingerprint256]),
    );
    assert.equal(wrongPin.code, 1, wrongPin.output);
    assert.match(
      stepOf(wrongPin, 'TLS').line,
      new RegExp(`not the pinned ${otherCa.fingerprint256}`),
    );
    assert.match(stepOf(wrongPin, 'TLS').line, new RegExp(cert.fingerprint256));
  });

  it('the proxy down: ✘ TCP connect, the proxy steps not checked, the targets still checked', async () => {
    const port = await deadPort();
    const target = await startTarget(metrics, after);
    const run = await runCheck(
      ['--proxy-url', `http://127.0.0.1:${port}`, '--name', 'demo'].concat([
        '--allow',
        String(target.port),
      ]),
    );
    assert.equal(run.code, 1, run.output);
    const tcp = stepOf(run, 'TCP connect');
    assert.match(
      tcp.line,
      new RegExp(`^✘ TCP connect: 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    assert.match(tcp.hint, /is natprox proxy running there/);
    assert.match(stepOf(run, 'TLS').line, /^- TLS: not used \(http:\/\/ proxy URL\)/);
    assert.match(stepOf(run, 'tunnel upgrade').line, /^- tunnel upgrade: not checked/);
    assert.match(stepOf(run, 'authentication').line, /^- authentication: not checked/);
    assert.match(stepOf(run, `target 127.0.0.1:${target.port}`).line, /^✔ /);
  });

  it('a target down: ✘ target with the hint to check the exporter; the rest passes', async () => {
    const { url } = await startProxy(after, { clientGrants: GRANTS });
    const up = await startTarget(metrics, after);
    const down = await deadPort();
    const run = await runCheck(
      ['--proxy-url', url, '--name', 'demo', '--token-file', demoTokenFile].concat([
        '--allow',
        String(up.port),
        '--allow',
        String(down),
      ]),
    );
    assert.equal(run.code, 1, run.output);
    const failedSteps = run.steps.filter((line) => line.startsWith('✘'));
    assert.equal(failedSteps.length, 1, run.output);
    const target = stepOf(run, `target 127.0.0.1:${down}`);
    assert.match(target.line, /^✘ .*connection refused/);
    assert.match(target.hint, new RegExp(`is the exporter running on 127\\.0\\.0\\.1:${down}`));
    assert.match(stepOf(run, 'authentication').line, /^✔ /);
  });

  it('an intermediary that strips Upgrade and Connection: ✘ tunnel upgrade with the nginx hint', async () => {
    const { port: proxyPort } = await startProxy(after, { clientGrants: GRANTS });
    const target = await startTarget(metrics, after);
    // A reverse proxy that forwards every request but, like nginx without
    // proxy_set_header Upgrade/Connection, drops the hop-by-hop upgrade headers.
    const forwarded: string[] = [];
    const intermediary = http.createServer((req, res) => {
      const headers = { ...req.headers };
      delete headers.upgrade;
      delete headers.connection;
      forwarded.push(`${req.method} ${req.url}`);
      const upstream = http.request(
        {
          host: '127.0.0.1',
          port: proxyPort,
          method: req.method,
          path: req.url,
          headers,
          agent: false,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.once('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => intermediary.listen(0, '127.0.0.1', resolve));
    after(() => {
      intermediary.closeAllConnections();
      intermediary.close();
    });
    const { port } = intermediary.address() as AddressInfo;

    const run = await runCheck(
      ['--proxy-url', `http://127.0.0.1:${port}`, '--name', 'demo'].concat([
        '--allow',
        String(target.port),
        '--token-file',
        demoTokenFile,
      ]),
    );
    assert.equal(run.code, 1, run.output);
    assert.deepEqual(forwarded, ['GET /natprox/v1/tunnel']);
    const upgrade = stepOf(run, 'tunnel upgrade');
    assert.match(upgrade.line, /^✘ tunnel upgrade: .*without its Upgrade header \(HTTP 426\)/);
    assert.match(upgrade.line, /intermediary/);
    assert.match(upgrade.hint, /proxy_set_header Upgrade \$http_upgrade/);
    assert.match(upgrade.hint, /proxy_set_header Connection "upgrade"/);
    assert.match(stepOf(run, 'authentication').line, /^- authentication: not checked/);

    // What the proxy itself answers a GET of the tunnel path: 426, saying why.
    const direct = await getOrigin(proxyPort, '/natprox/v1/tunnel');
    assert.equal(direct.status, 426);
    assert.equal(direct.headers.upgrade, 'natprox-h2');
    assert.match(direct.body, /reverse proxy on the way drops them/);
  });

  it('the dry run registers nothing: a connected client with the same name keeps serving, /clients unchanged', async () => {
    const { proxy, port, url } = await startProxy(after, { clientGrants: GRANTS });
    const target = await startTarget(metrics, after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
      token: TOKEN_DEMO,
    });
    let connected = 0;
    proxy.events.on('tunnelConnected', () => (connected += 1));
    const clientsBefore = await getOrigin(port, '/clients');
    assert.equal(clientsBefore.status, 200);

    const check = spawnNatprox(
      ['check', '--proxy-url', url, '--name', 'demo', '--allow', String(target.port)].concat([
        '--token-file',
        demoTokenFile,
      ]),
      after,
    );
    const statuses: number[] = [];
    let exited = false;
    const code = check.exited.then((c) => {
      exited = true;
      return c;
    });
    // Scrape "demo" all through the check, and once more after it.
    while (!exited) {
      statuses.push((await scrapeThrough(port, `http://demo:${target.port}/metrics`)).status);
    }
    assert.equal(await within(code, 20_000, 'natprox check to exit'), 0, check.output());
    statuses.push((await scrapeThrough(port, `http://demo:${target.port}/metrics`)).status);

    assert.ok(statuses.length >= 2);
    assert.deepEqual(new Set(statuses), new Set([200]), JSON.stringify(statuses));
    assert.equal(connected, 0, 'the check opened no tunnel');
    assert.equal(proxy.registry.size, 1);
    const clientsAfter = await getOrigin(port, '/clients');
    assert.equal(clientsAfter.body, clientsBefore.body);
    assert.match(check.output(), /✔ authentication: token accepted; may register demo, demo-\*/);
  });

  it('a proxy without clients: says that any client may register any name', async () => {
    const { url } = await startProxy(after);
    const target = await startTarget(metrics, after);
    const run = await runCheck([
      '--proxy-url',
      url,
      '--name',
      'demo',
      '--allow',
      String(target.port),
    ]);
    assert.equal(run.code, 0, run.output);
    assert.match(
      stepOf(run, 'authentication').line,
      /^✔ authentication: the proxy checks no client tokens \(no clients: in its config\).*will register demo/,
    );
  });

  it('the PushProx transport: the path is checked up to the proxy, but no trial poll is sent', async () => {
    const { url, proxy } = await startProxy(after);
    const target = await startTarget(metrics, after);
    let polls = 0;
    proxy.events.on('tunnelConnected', () => (polls += 1));
    const run = await runCheck([
      '--transport',
      'pushprox',
      '--proxy-url',
      url,
      '--name',
      'demo',
      '--allow',
      String(target.port),
    ]);
    assert.equal(run.code, 0, run.output);
    assert.match(stepOf(run, 'TCP connect').line, /^✔/);
    assert.match(
      stepOf(run, 'tunnel upgrade').line,
      /^- tunnel upgrade: not checked \(PushProx transport/,
    );
    assert.match(stepOf(run, 'authentication').line, /^- authentication: not checked/);
    assert.equal(polls, 0, 'no poll reached the proxy');
  });

  it('a bad configuration prints ✘ configuration first, nothing else checked, exit 2', async () => {
    const run = await runCheck(['--proxy-url', 'ftp://x', '--allow', '9100']);
    assert.equal(run.code, 2, run.output);
    assert.match(
      run.steps[0] ?? '',
      /^✘ configuration: --proxy-url: expected an http:\/\/ or https:\/\/ URL/,
    );
    assert.ok(
      run.steps.slice(1).every((line) => line.startsWith('- ')),
      run.output,
    );
  });
});

describe('natprox check: mapping answers to steps', () => {
  const context = { path: '/natprox/v1/tunnel', names: ['demo'], token: 't' };

  it('a 200 without the dry-run header is an intermediary answering, not the proxy', () => {
    const [upgrade, auth] = tunnelOutcomes(
      { kind: 'response', status: 200, headers: { server: 'nginx' }, body: '<html>welcome</html>' },
      context,
    );
    assert.equal(upgrade.status, 'fail');
    assert.match(upgrade.detail, /an intermediary answered HTTP 200 \(server: nginx\)/);
    assert.match(upgrade.hint ?? '', /proxy_set_header Upgrade/);
    assert.equal(auth.status, 'skip');
  });

  it('a 502 from an intermediary points at the proxy behind it; a natprox 503 names the limit', () => {
    const [bad] = tunnelOutcomes(
      { kind: 'response', status: 502, headers: {}, body: 'Bad Gateway' },
      context,
    );
    assert.equal(bad.status, 'fail');
    assert.match(bad.hint ?? '', /natprox proxy behind it may be down/);
    const [upgrade, auth] = tunnelOutcomes(
      {
        kind: 'response',
        status: 503,
        headers: {},
        body: 'natprox: the proxy has reached its limit of 1 clients (max_clients)',
      },
      context,
    );
    assert.equal(upgrade.status, 'pass');
    assert.equal(auth.status, 'fail');
    assert.match(auth.hint ?? '', /max_clients/);
  });

  it('a per-entry limit (429) and a name the proxy answers to itself (403) say what to change', () => {
    const [, limited] = tunnelOutcomes(
      {
        kind: 'response',
        status: 429,
        headers: {},
        body: 'natprox: the clients: entry for home-* already holds 400 tunnels, its limit (raise max_tunnels in that entry, or limits: max_tunnels_per_name on the proxy)',
      },
      context,
    );
    assert.equal(limited.status, 'fail');
    assert.match(limited.detail, /already holds 400 tunnels.*\(HTTP 429\)/);
    assert.match(limited.hint ?? '', /max_names \/ max_tunnels/);
    const [, own] = tunnelOutcomes(
      {
        kind: 'response',
        status: 403,
        headers: {},
        body: 'natprox: "vps.example.com" is a name the proxy itself answers to (its public_names, …)',
      },
      context,
    );
    assert.equal(own.status, 'fail');
    assert.match(own.hint ?? '', /give the client a name of its own/);
  });

  it('an expired certificate says when, and to renew it', () => {
    const certificate = {
      subjectaltname: 'DNS:vps.example',
      subject: { CN: 'vps.example' },
      issuer: { CN: 'Some CA' },
      valid_from: 'Jan  1 00:00:00 2024 GMT',
      valid_to: 'Feb  1 00:00:00 2024 GMT',
    } as unknown as DetailedPeerCertificate;
    const outcome = tlsOutcome(
      {
        ok: true,
        facts: {
          socket: {} as TLSSocket,
          certificate,
          verifyError: 'CERT_HAS_EXPIRED',
          hostnameError: undefined,
          fingerprint: undefined,
        },
      },
      { host: 'vps.example', port: 443, tls: undefined, now: new Date('2024-03-01T00:00:00Z') },
    );
    assert.equal(outcome.status, 'fail');
    assert.match(outcome.detail, /expired on 2024-02-01/);
    assert.match(outcome.hint ?? '', /renew/);
  });
});
