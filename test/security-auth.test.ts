/**
 * Security: who may connect and register which names (client tokens), who may scrape
 * (scraper credentials, Proxy-Authorization), who may read the operator pages, the CLI that
 * makes the secrets, secure-by-default start, and secrets never showing up anywhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { logProxyEvents } from '../src/observability/proxy-logging.js';
import { NatproxClient, type NatproxProxy } from '../src/index.js';
import {
  BIN,
  eventually,
  getOrigin,
  scrapeThrough,
  spawnNatprox,
  startClient,
  startProxy,
  startTarget,
  within,
  type NatproxProcess,
} from './helpers/loopback.js';
import { records, type LogRecord } from './helpers/log-records.js';
import { connectThrough, tunnelAttempt } from './helpers/raw-http.js';
import { sha256 } from './helpers/hashes.js';

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** A target that answers with the URL and headers it received, as JSON. */
const echo: RequestListener = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ url: req.url, headers: req.headers }));
};

function seenHeaders(body: string): IncomingHttpHeaders {
  return (JSON.parse(body) as { headers: IncomingHttpHeaders }).headers;
}

/** Collects the proxy's log lines (the real proxy logging on the proxy's events). */
function captureLog(proxy: NatproxProxy): () => Array<Record<string, unknown>> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  logProxyEvents(proxy.events, pino({ level: 'debug' }, sink));
  return () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

const TOKEN_DEMO = 'token-for-demo-0123456789abcdef';
const TOKEN_OTHER = 'token-for-other-0123456789abcdef';
const TOKEN_HOME = 'token-for-home-0123456789abcdef';

describe('client tokens: who may register which name', () => {
  const grants = [
    { tokenSha256: sha256(TOKEN_DEMO), names: ['demo'] },
    { tokenSha256: sha256(TOKEN_OTHER), names: ['other'] },
    { tokenSha256: sha256(TOKEN_HOME), names: ['home-*'] },
  ];

  it('a wrong token gets 401 with the reason and WWW-Authenticate; no token too; the client never connects', async (t: TestContext) => {
    const { proxy, port, url } = await startProxy(after, { clientGrants: grants });
    const rejected: Array<{ status: number; reason: string }> = [];
    proxy.events.on('tunnelRejected', (info) => rejected.push(info));

    const wrong = await tunnelAttempt(port, { token: 'not-a-known-token' });
    assert.equal(wrong.status, 401, wrong.body);
    assert.match(wrong.body, /token is not known/);
    assert.match(String(wrong.headers['www-authenticate']), /^Bearer /);

    const none = await tunnelAttempt(port);
    assert.equal(none.status, 401, none.body);
    assert.match(none.body, /requires a client token/);

    // A Basic credential is not a client token either.
    const asBasic = await tunnelAttempt(port, {
      headers: { authorization: basic('demo', TOKEN_DEMO) },
    });
    assert.equal(asBasic.status, 401, asBasic.body);

    // The real client with a wrong token: stays unconnected and says why.
    const client = new NatproxClient({
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: 9 }],
      token: 'not-a-known-token',
      backoff: { initialMs: 50, maxMs: 100, multiplier: 2, jitter: 0 },
    });
    t.after(() => client.stop(0));
    client.start();
    await eventually(
      () => client.state.state === 'reconnecting',
      5000,
      'the client to report the refusal',
    );
    const state = client.state;
    assert.ok(state.state === 'reconnecting');
    assert.match(state.lastError, /401/);
    assert.match(state.lastError, /token is not known/);
    assert.equal(proxy.registry.size, 0);
    assert.ok(rejected.length >= 4, JSON.stringify(rejected));
    assert.ok(rejected.every((r) => r.status === 401));
  });

  it('a token granted for other names gets 403 naming the name; the rejection is logged with the client address', async () => {
    const { proxy, port } = await startProxy(after, { clientGrants: grants });
    const log = captureLog(proxy);
    const rejected: Array<{ remoteAddress: string; status: number; reason: string }> = [];
    proxy.events.on('tunnelRejected', (info) => rejected.push(info));

    const attempt = await tunnelAttempt(port, {
      token: TOKEN_OTHER,
      registration: { names: ['demo'], labels: {}, ports: [9100], version: 'test' },
    });
    assert.equal(attempt.status, 403, attempt.body);
    assert.match(attempt.body, /"demo"/);
    assert.equal(proxy.registry.size, 0);

    assert.equal(rejected.length, 1);
    const [event] = rejected;
    assert.equal(event?.status, 403);
    assert.equal(event?.remoteAddress, `127.0.0.1:${attempt.localPort}`);
    assert.match(event?.reason ?? '', /"demo"/);

    const line = log().find((record) => record.msg === 'client rejected');
    assert.ok(line, `no "client rejected" log line in ${JSON.stringify(log())}`);
    assert.equal(line.remoteAddress, `127.0.0.1:${attempt.localPort}`);
    assert.equal(line.status, 403);
    assert.match(String(line.reason), /"demo"/);

    // Asking for a granted name and a foreign one at once is refused as a whole.
    const mixed = await tunnelAttempt(port, {
      token: TOKEN_OTHER,
      registration: { names: ['other', 'demo'], labels: {}, ports: [9100], version: 'test' },
    });
    assert.equal(mixed.status, 403, mixed.body);
    assert.match(mixed.body, /"demo"/);
    assert.doesNotMatch(mixed.body, /"other"/);
    assert.equal(proxy.registry.size, 0);
  });

  it('name hijack while the owner is connected: 403, the owner keeps serving its name', async () => {
    const owner = await startTarget((_req, res) => res.end('owner_metric 1\n'), after);
    const { proxy, port, url } = await startProxy(after, { clientGrants: grants });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: owner.port }],
      token: TOKEN_DEMO,
    });
    const before = await scrapeThrough(port, `http://demo:${owner.port}/metrics`);
    assert.equal(before.status, 200, before.body);
    const ownerSession = proxy.registry.lookup('demo');
    assert.ok(ownerSession);

    // The attacker holds a valid token, but one that grants only "other".
    const hijack = await tunnelAttempt(port, {
      token: TOKEN_OTHER,
      registration: { names: ['demo'], labels: {}, ports: [owner.port], version: 'evil' },
    });
    assert.equal(hijack.status, 403, hijack.body);
    assert.match(hijack.body, /"demo"/);

    // A glob that would cover it is no help to a token that grants home-* only.
    const viaGlob = await tunnelAttempt(port, {
      token: TOKEN_HOME,
      registration: { names: ['demo'], labels: {}, ports: [owner.port], version: 'evil' },
    });
    assert.equal(viaGlob.status, 403, viaGlob.body);

    assert.equal(proxy.registry.lookup('demo'), ownerSession, 'the owner still serves demo');
    assert.equal(proxy.registry.size, 1);
    for (let i = 0; i < 3; i += 1) {
      const after = await scrapeThrough(port, `http://demo:${owner.port}/metrics`);
      assert.equal(after.status, 200, after.body);
      assert.equal(after.body, 'owner_metric 1\n');
    }
  });

  it('a token granting "home-*" registers home-1, not "other" nor "xhome-1"', async () => {
    const target = await startTarget((_req, res) => res.end('home 1\n'), after);
    const { port, url } = await startProxy(after, { clientGrants: grants });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home-1'],
      allow: [{ host: '127.0.0.1', port: target.port }],
      token: TOKEN_HOME,
    });
    const scrape = await scrapeThrough(port, `http://home-1:${target.port}/metrics`);
    assert.equal(scrape.status, 200, scrape.body);
    assert.equal(scrape.body, 'home 1\n');

    for (const name of ['other', 'xhome-1', 'home']) {
      const attempt = await tunnelAttempt(port, {
        token: TOKEN_HOME,
        registration: { names: [name], labels: {}, ports: [9100], version: 'test' },
      });
      assert.equal(attempt.status, 403, `${name}: ${attempt.body}`);
      assert.match(attempt.body, new RegExp(`"${name}"`));
    }
  });
});

const SCRAPER_USER = 'prometheus';
const SCRAPER_PASSWORD = 'scraper-pass-Zq8!';
const SCRAPER_BEARER = 'scraper-bearer-token-Y7d2';
const OPS_USER = 'ops';
const OPS_PASSWORD = 'ops-pass-Kx3#';

describe('scraper credentials (Proxy-Authorization)', () => {
  const scrapers = [
    { username: SCRAPER_USER, passwordSha256: sha256(SCRAPER_PASSWORD) },
    { bearerSha256: sha256(SCRAPER_BEARER) },
  ];

  it('missing or wrong Basic and Bearer get 407 with Proxy-Authenticate; the right ones 200', async () => {
    const target = await startTarget(echo, after);
    const { proxy, port, url } = await startProxy(after, { scrapers });
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const targetUrl = `http://demo:${target.port}/metrics`;
    const outcomes: string[] = [];
    proxy.events.on('scrapeFinished', (info) => outcomes.push(info.outcome));

    const refused: Array<[string, Record<string, string>]> = [
      ['no credentials', {}],
      ['wrong password', { 'proxy-authorization': basic(SCRAPER_USER, 'wrong') }],
      ['wrong user', { 'proxy-authorization': basic('admin', SCRAPER_PASSWORD) }],
      ['empty password', { 'proxy-authorization': basic(SCRAPER_USER, '') }],
      ['wrong bearer', { 'proxy-authorization': 'Bearer wrong-token' }],
      ['password as bearer', { 'proxy-authorization': `Bearer ${SCRAPER_PASSWORD}` }],
      ['bearer as basic', { 'proxy-authorization': basic('x', SCRAPER_BEARER) }],
      ['unknown scheme', { 'proxy-authorization': `Digest ${SCRAPER_BEARER}` }],
      // Credentials for the target are not credentials for the proxy.
      ['Authorization instead', { authorization: basic(SCRAPER_USER, SCRAPER_PASSWORD) }],
    ];
    for (const [what, headers] of refused) {
      const result = await scrapeThrough(port, targetUrl, headers);
      assert.equal(result.status, 407, `${what}: ${result.body}`);
      assert.match(String(result.headers['proxy-authenticate']), /^Basic realm=/, what);
      assert.match(result.body, /natprox: /, what);
    }
    assert.deepEqual(
      outcomes,
      refused.map(() => 'unauthorized'),
    );

    // As Prometheus sends them: proxy_url with user:password@ → Basic; or a bearer token.
    const viaBasic = await scrapeThrough(port, targetUrl, {
      'proxy-authorization': basic(SCRAPER_USER, SCRAPER_PASSWORD),
    });
    assert.equal(viaBasic.status, 200, viaBasic.body);
    const viaBearer = await scrapeThrough(port, targetUrl, {
      'proxy-authorization': `Bearer ${SCRAPER_BEARER}`,
    });
    assert.equal(viaBearer.status, 200, viaBearer.body);
  });

  it('CONNECT needs scraper credentials too: 407 without, not 407 with', async () => {
    const { port } = await startProxy(after, { scrapers });
    const without = await connectThrough(port, 'demo:443');
    without.socket.destroy();
    assert.equal(without.status, 407, without.head.toString());
    assert.match(without.head.toString(), /proxy authentication required/);
    const withCreds = await connectThrough(port, 'demo:443', {
      'proxy-authorization': `Bearer ${SCRAPER_BEARER}`,
    });
    withCreds.socket.destroy();
    // Authenticated: nobody serves "demo", so 503 rather than 407.
    assert.equal(withCreds.status, 503, withCreds.head.toString());
  });

  it("the target's Authorization passes through untouched; Proxy-Authorization does not reach the target", async () => {
    const target = await startTarget(echo, after);
    const { port, url } = await startProxy(after, { scrapers });
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const targetAuth = 'Basic dGFyZ2V0LXVzZXI6dGFyZ2V0LXBhc3M=';
    const result = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': basic(SCRAPER_USER, SCRAPER_PASSWORD),
      authorization: targetAuth,
    });
    assert.equal(result.status, 200, result.body);
    const seen = seenHeaders(result.body);
    assert.equal(seen.authorization, targetAuth);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.ok(
      !JSON.stringify(seen).includes(
        Buffer.from(`${SCRAPER_USER}:`).toString('base64').slice(0, 8),
      ),
      `scraper credentials leaked to the target: ${result.body}`,
    );

    // A bearer for the target, next to a bearer for the proxy.
    const bearer = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': `Bearer ${SCRAPER_BEARER}`,
      authorization: 'Bearer target-token',
    });
    assert.equal(bearer.status, 200, bearer.body);
    assert.equal(seenHeaders(bearer.body).authorization, 'Bearer target-token');
    assert.doesNotMatch(bearer.body, new RegExp(SCRAPER_BEARER));
  });
});

describe('operator endpoints (/clients, /metrics, /)', () => {
  const scrapers = [{ username: SCRAPER_USER, passwordSha256: sha256(SCRAPER_PASSWORD) }];
  const operators = [{ username: OPS_USER, passwordSha256: sha256(OPS_PASSWORD) }];

  it('401 with WWW-Authenticate without credentials; 200 with operator credentials; scraper credentials do not open them', async () => {
    const { port } = await startProxy(after, { scrapers, operators });
    for (const path of ['/clients', '/metrics', '/']) {
      const none = await getOrigin(port, path);
      assert.equal(none.status, 401, `${path}: ${none.body}`);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm=/, path);

      const wrong = await getOrigin(port, path, { authorization: basic(OPS_USER, 'nope') });
      assert.equal(wrong.status, 401, `${path} wrong password: ${wrong.body}`);

      const scraper = await getOrigin(port, path, {
        authorization: basic(SCRAPER_USER, SCRAPER_PASSWORD),
      });
      assert.equal(scraper.status, 401, `${path} with scraper credentials: ${scraper.body}`);

      const ops = await getOrigin(port, path, { authorization: basic(OPS_USER, OPS_PASSWORD) });
      assert.equal(ops.status, 200, `${path} with operator credentials: ${ops.body}`);
    }
    // Health checks stay open: load balancers probe them without credentials.
    assert.equal((await getOrigin(port, '/-/healthy')).status, 200);
  });

  it('operator credentials do not authorize scrapes', async () => {
    const { port } = await startProxy(after, { scrapers, operators });
    const result = await scrapeThrough(port, 'http://demo:9100/metrics', {
      'proxy-authorization': basic(OPS_USER, OPS_PASSWORD),
    });
    assert.equal(result.status, 407, result.body);
  });

  it('without operators: the scraper credentials open them, via Authorization', async () => {
    const { port } = await startProxy(after, { scrapers });
    const none = await getOrigin(port, '/clients');
    assert.equal(none.status, 401, none.body);
    const ok = await getOrigin(port, '/clients', {
      authorization: basic(SCRAPER_USER, SCRAPER_PASSWORD),
    });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), []);
  });
});

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function natprox(args: string[], stdin?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NATPROX_LOG_LEVEL: 'info' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

describe('natprox token and natprox hash-password', { concurrency: true }, () => {
  it('natprox token: token_sha256 is the sha256 of the token, which carries >= 128 random bits', async () => {
    const [first, second] = await Promise.all([natprox(['token']), natprox(['token'])]);
    const tokens: string[] = [];
    for (const run of [first, second]) {
      assert.equal(run.code, 0, run.stderr);
      const token = /^token: (\S+)$/m.exec(run.stdout)?.[1];
      const hash = /^token_sha256: "([0-9a-f]{64})"$/m.exec(run.stdout)?.[1];
      assert.ok(token && hash, run.stdout);
      assert.equal(hash, sha256(token));
      assert.match(token, /^[A-Za-z0-9_-]+$/, 'base64url');
      assert.ok(token.length >= 22, `token of ${token.length} characters`);
      assert.ok(Buffer.from(token, 'base64url').length >= 16, 'at least 128 bits');
      tokens.push(token);
    }
    assert.notEqual(tokens[0], tokens[1]);
  });

  it('printf %s pw | natprox hash-password prints sha256("pw"); one trailing newline is stripped, only one', async () => {
    const cases: Array<[string, string]> = [
      ['pw', 'pw'],
      ['pw\n', 'pw'],
      ['pw\r\n', 'pw'],
      ['pw\n\n', 'pw\n'],
      [' spaced pw ', ' spaced pw '],
      ['pässwörd', 'pässwörd'],
    ];
    const runs = await Promise.all(cases.map(([input]) => natprox(['hash-password'], input)));
    cases.forEach(([input, hashed], i) => {
      const run = runs[i] as RunResult;
      assert.equal(run.code, 0, `${JSON.stringify(input)}: ${run.stderr}`);
      const hash = /^password_sha256: "([0-9a-f]{64})"$/m.exec(run.stdout)?.[1];
      assert.equal(hash, sha256(hashed), `${JSON.stringify(input)} → ${run.stdout}`);
      assert.ok(!run.stdout.includes(hashed.trim()), 'the password itself is not echoed');
    });
    const empty = await natprox(['hash-password'], '');
    assert.equal(empty.code, 2, empty.stdout);
  });

  it('natprox hash-password reads at most 4096 bytes of stdin', async () => {
    const [atLimit, over] = await Promise.all([
      natprox(['hash-password'], 'p'.repeat(4096)),
      natprox(['hash-password'], 'p'.repeat(4097)),
    ]);
    assert.equal(atLimit.code, 0, atLimit.stderr);
    assert.match(atLimit.stdout, new RegExp(`password_sha256: "${sha256('p'.repeat(4096))}"`));
    assert.equal(over.code, 2, over.stdout);
    assert.match(over.stderr, /stdin holds over 4096 bytes; expected one password/);
    assert.equal(over.stdout, '');
  });
});

async function waitForRecord(
  proc: NatproxProcess,
  match: (record: LogRecord) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<LogRecord> {
  let found: LogRecord | undefined;
  await eventually(
    () => {
      found = records(proc).find(match);
      return found !== undefined;
    },
    timeoutMs,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${proc.output()}`);
  });
  return found as LogRecord;
}

function teardownOf(t: TestContext): (fn: () => unknown) => void {
  return (fn) => t.after(fn);
}

describe('secure by default', { concurrency: true }, () => {
  it('natprox proxy --listen 0.0.0.0:0 without a config exits 2 and mentions --insecure', async () => {
    const run = await natprox(['proxy', '--listen', '0.0.0.0:0']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--insecure/);
    assert.match(run.stderr, /clients:/);
    assert.match(run.stderr, /scrapers:/);
  });

  it('a config with clients: but no scrapers: is refused on 0.0.0.0 too', async (t: TestContext) => {
    const dir = await mkdtemp(join(tmpdir(), 'natprox-secure-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'proxy.yaml');
    await writeFile(
      config,
      `clients:\n  - names: ["demo"]\n    token_sha256: "${sha256(TOKEN_DEMO)}"\n`,
    );
    const run = await natprox(['proxy', '--listen', '0.0.0.0:0', '--config', config]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /scrapers:/);
    assert.match(run.stderr, /--insecure/);
  });

  it('with --insecure it starts and warns loudly (INSECURE)', async (t: TestContext) => {
    const proc = spawnNatprox(['proxy', '--listen', '0.0.0.0:0', '--insecure'], teardownOf(t));
    await waitForRecord(proc, (r) => r.msg === 'proxy listening', 'proxy listening');
    const warning = records(proc).find((r) => /INSECURE/.test(r.msg));
    assert.ok(warning, proc.output());
    assert.equal(warning.level, 40, 'logged as a warning');
    proc.child.kill('SIGKILL');
  });
});

describe('secrets never appear in logs, metrics, /clients or error messages', () => {
  it('proxy and clients at debug level, failing and succeeding scrapes and tunnels', async (t: TestContext) => {
    const dir = await mkdtemp(join(tmpdir(), 'natprox-secrets-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const clientToken = 'ClientTok-6f1c2a9e8b7d4c3a';
    const foreignToken = 'ForeignTok-1a2b3c4d5e6f7a8b';
    const wrongToken = 'WrongTok-9z8y7x6w5v4u3t2s';
    const scraperPassword = 'ScrPw-Hq7wLm2p';
    const wrongPassword = 'ScrPw-Hq7wLm2q';
    const bearer = 'ScrBearer-Vx4nB8kR';
    const wrongBearer = 'ScrBearer-Vx4nB8kS';
    const opsPassword = 'OpsPw-Rt5yUi9o';
    const targetSecret = 'TargetAuth-Pp0oIi9u';
    const secrets = [
      clientToken,
      foreignToken,
      wrongToken,
      scraperPassword,
      wrongPassword,
      bearer,
      wrongBearer,
      opsPassword,
      targetSecret,
      Buffer.from(`prometheus:${scraperPassword}`).toString('base64'),
      Buffer.from(`prometheus:${wrongPassword}`).toString('base64'),
      Buffer.from(`ops:${opsPassword}`).toString('base64'),
      Buffer.from(`ops:${wrongPassword}`).toString('base64'),
    ];

    const target = await startTarget((_req, res) => res.end('up 1\n'), teardownOf(t));
    const config = join(dir, 'proxy.yaml');
    await writeFile(
      config,
      [
        'listen: 127.0.0.1:0',
        'clients:',
        '  - names: ["demo"]',
        `    token_sha256: "${sha256(clientToken)}"`,
        '  - names: ["elsewhere"]',
        `    token_sha256: "${sha256(foreignToken)}"`,
        'scrapers:',
        '  - username: prometheus',
        `    password_sha256: "${sha256(scraperPassword)}"`,
        `  - bearer_sha256: "${sha256(bearer)}"`,
        'operators:',
        '  - username: ops',
        `    password_sha256: "${sha256(opsPassword)}"`,
        '',
      ].join('\n'),
    );
    const tokenFile = (name: string, token: string): Promise<string> => {
      const file = join(dir, name);
      return writeFile(file, `${token}\n`).then(() => file);
    };
    const proxy = spawnNatprox(['proxy', '--config', config], teardownOf(t));
    const listening = await waitForRecord(proxy, (r) => r.msg === 'proxy listening', 'listening');
    const port = Number(/:(\d+)$/.exec(String(listening.address))?.[1]);
    const proxyUrl = `http://127.0.0.1:${port}`;
    const clientArgs = (file: string): string[] => [
      'client',
      '--proxy-url',
      proxyUrl,
      '--name',
      'demo',
      '--allow',
      String(target.port),
      '--token-file',
      file,
    ];
    const good = spawnNatprox(clientArgs(await tokenFile('good', clientToken)), teardownOf(t));
    const wrong = spawnNatprox(clientArgs(await tokenFile('wrong', wrongToken)), teardownOf(t));
    const foreign = spawnNatprox(
      clientArgs(await tokenFile('foreign', foreignToken)),
      teardownOf(t),
    );
    await waitForRecord(good, (r) => r.msg === 'tunnel connected', 'good client connected');
    await waitForRecord(wrong, (r) => /401/.test(String(r.reason)), 'wrong token refused');
    await waitForRecord(foreign, (r) => /403/.test(String(r.reason)), 'foreign token refused');

    const url = `http://demo:${target.port}/metrics`;
    const bodies: string[] = [];
    const scrape = async (headers: Record<string, string>, status: number): Promise<void> => {
      const result = await within(scrapeThrough(port, url, headers), 5000, 'scrape');
      assert.equal(result.status, status, result.body);
      bodies.push(result.body, JSON.stringify(result.headers));
    };
    await scrape({}, 407);
    await scrape({ 'proxy-authorization': basic('prometheus', wrongPassword) }, 407);
    await scrape({ 'proxy-authorization': `Bearer ${wrongBearer}` }, 407);
    await scrape({ 'proxy-authorization': `Bearer ${wrongToken}` }, 407);
    await scrape({ 'proxy-authorization': `Bearer ${clientToken}` }, 407);
    await scrape(
      {
        'proxy-authorization': basic('prometheus', scraperPassword),
        authorization: `Bearer ${targetSecret}`,
      },
      200,
    );
    await scrape({ 'proxy-authorization': `Bearer ${bearer}` }, 200);
    const refusedTunnel = await tunnelAttempt(port, { token: wrongToken });
    assert.equal(refusedTunnel.status, 401);
    bodies.push(refusedTunnel.body);
    const wrongOps = await getOrigin(port, '/clients', {
      authorization: basic('ops', wrongPassword),
    });
    assert.equal(wrongOps.status, 401);
    bodies.push(wrongOps.body);
    const ops = { authorization: basic('ops', opsPassword) };
    const clients = await getOrigin(port, '/clients', ops);
    const metrics = await getOrigin(port, '/metrics', ops);
    const status = await getOrigin(port, '/', ops);
    for (const page of [clients, metrics, status]) assert.equal(page.status, 200, page.body);
    assert.match(clients.body, /demo/);
    assert.match(metrics.body, /natprox_/);
    bodies.push(clients.body, metrics.body, status.body);
    // Let the processes flush their last log lines (pino writes asynchronously). The five
    // refusals are one line (repeats are counted in a line of their own 10 s later).
    await eventually(
      () => records(proxy).filter((r) => /^scrape/.test(r.msg)).length >= 3,
      5000,
      'the scrapes logged',
    );
    assert.ok(records(proxy).some((r) => r.msg === 'client rejected' && r.status === 401));
    assert.ok(records(proxy).some((r) => r.msg === 'client rejected' && r.status === 403));

    const places: Array<[string, string]> = [
      ['proxy output', proxy.output()],
      ['good client output', good.output()],
      ['wrong-token client output', wrong.output()],
      ['foreign-token client output', foreign.output()],
      ['responses', bodies.join('\n')],
    ];
    for (const [where, text] of places) {
      for (const secret of secrets) {
        assert.ok(!text.includes(secret), `${where} contains the secret ${secret}:\n${text}`);
      }
    }
  });
});
