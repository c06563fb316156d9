/**
 * Security: a token in the user info of a proxy URL (where PushProx clients put it, and
 * where a user may put it for natprox client too) never shows up in what natprox writes or
 * serves: every log level of client and proxy, `natprox check`'s lines, configuration
 * errors, the client's /metrics and the proxy's /metrics, /clients, JSON and status page.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { redactUrl } from '../src/util/redact-url.js';
import {
  deadPort,
  eventually,
  getOrigin,
  scrapeThrough,
  spawnNatprox,
  startTarget,
  within,
  type NatproxProcess,
} from './helpers/loopback.js';
import { records, type LogRecord } from './helpers/log-records.js';
import { sha256 } from './helpers/hashes.js';

const TRACE = { NATPROX_LOG_LEVEL: 'trace' };

describe('redactUrl', () => {
  it('replaces the whole user info, and leaves a URL without one as it is', () => {
    assert.equal(redactUrl(new URL('http://name:tok@vps:8080/')), 'http://***@vps:8080/');
    assert.equal(redactUrl('https://tok@vps/base?x=1#f'), 'https://***@vps/base?x=1#f');
    assert.equal(redactUrl('http://:tok@[::1]:8080'), 'http://***@[::1]:8080/');
    assert.equal(redactUrl('http://vps:8080/'), 'http://vps:8080/');
    assert.equal(redactUrl(new URL('https://vps.example')), 'https://vps.example/');
  });

  it('redacts text that is not a URL as far as it can be read', () => {
    assert.equal(redactUrl('http://name:tok@vps:80:80/x@y'), 'http://***@vps:80:80/x@y');
    assert.equal(redactUrl('name:t@k@vps:9100'), '***@vps:9100');
    assert.equal(redactUrl('vps:9100/a@b'), 'vps:9100/a@b');
    assert.equal(redactUrl(''), '');
  });
});

describe('a token in the proxy URL is never shown', () => {
  const secret = `url-secret-${randomBytes(12).toString('hex')}`;
  const wrong = `wrong-secret-${randomBytes(12).toString('hex')}`;
  const teardowns: Array<() => unknown> = [];
  const teardown = (fn: () => unknown): void => {
    teardowns.push(fn);
  };
  let dir: string;
  let proxy: NatproxProcess;
  let proxyPort: number;
  let targetPort: number;
  let tokenFile: string;
  /** Everything natprox wrote or served, by where it came from. */
  const seen: Array<[string, () => string]> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natprox-secrets-'));
    tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${secret}\n`, { mode: 0o600 });
    const config = join(dir, 'proxy.yml');
    await writeFile(
      config,
      [
        'listen: 127.0.0.1:0',
        'clients:',
        '  - names: [demo, pp.example]',
        `    token_sha256: "${sha256(secret)}"`,
        '',
      ].join('\n'),
    );
    targetPort = (await startTarget((_req, res) => res.end('up 1\n'), teardown)).port;
    proxy = spawnNatprox(['proxy', '--config', config], teardown, TRACE);
    seen.push(['proxy output', () => proxy.output()]);
    const listening = await waitForRecord(proxy, (r) => r.msg === 'proxy listening');
    proxyPort = Number(/:(\d+)$/.exec(String(listening.address))?.[1]);
  });
  after(async () => {
    for (const fn of teardowns.reverse()) await fn();
    await rm(dir, { recursive: true, force: true });
  });

  function client(what: string, args: string[]): NatproxProcess {
    const proc = spawnNatprox(
      ['client', '--log-level', 'trace', '--allow', String(targetPort), ...args],
      teardown,
      TRACE,
    );
    seen.push([what, () => proc.output()]);
    return proc;
  }

  async function waitForRecord(
    proc: NatproxProcess,
    match: (record: LogRecord) => boolean,
  ): Promise<LogRecord> {
    let found: LogRecord | undefined;
    await eventually(
      () => (found = records(proc).find(match)) !== undefined,
      15_000,
      `a log line; output so far:\n${proc.output()}`,
    );
    return found as LogRecord;
  }

  async function run(what: string, args: string[]): Promise<number | null> {
    const proc = spawnNatprox(args, teardown, TRACE);
    seen.push([what, () => proc.output()]);
    return within(proc.exited, 20_000, `${what} to exit`);
  }

  async function page(what: string, port: number, path: string): Promise<void> {
    const answer = await getOrigin(port, path);
    assert.equal(answer.status, 200, `${what}: ${answer.body}`);
    seen.push([what, () => answer.body]);
  }

  it('in logs at every level, check, errors, metrics and the status page', async () => {
    const native = client('native client', [
      ...['--proxy-url', `http://demo:${secret}@127.0.0.1:${proxyPort}/`],
      ...['--name', 'demo', '--token-file', tokenFile, '--metrics-listen', '127.0.0.1:0'],
    ]);
    const pushprox = client('PushProx-style client', [
      ...['--transport', 'pushprox', '--name', 'pp.example'],
      ...['--proxy-url', `http://pp.example:${secret}@127.0.0.1:${proxyPort}/`],
    ]);
    const refused = client('client with a wrong token in its URL', [
      ...['--transport', 'pushprox', '--name', 'pp.example'],
      ...['--proxy-url', `http://pp.example:${wrong}@127.0.0.1:${proxyPort}/`],
    ]);
    const unreachable = client('client of an unreachable proxy', [
      ...['--proxy-url', `http://demo:${secret}@127.0.0.1:${await deadPort()}/`],
      ...['--name', 'demo', '--token-file', tokenFile],
    ]);
    await waitForRecord(native, (r) => r.msg === 'tunnel connected');
    await waitForRecord(refused, (r) => /401/.test(String(r.reason)));
    await waitForRecord(unreachable, (r) => /ECONNREFUSED|cannot reach/.test(String(r.reason)));
    const metricsAt = await waitForRecord(native, (r) => /client metrics listening/.test(r.msg));
    const metricsPort = Number(/:(\d+)$/.exec(String(metricsAt.address))?.[1]);
    for (const name of ['demo', 'pp.example']) {
      await eventually(
        async () =>
          (await scrapeThrough(proxyPort, `http://${name}:${targetPort}/m`)).status === 200,
        15_000,
        `a scrape of ${name} through the proxy; output:\n${pushprox.output()}`,
      );
    }

    const checkArgs = ['--name', 'demo', '--allow', String(targetPort), '--token-file', tokenFile];
    const secretUrl = `http://demo:${secret}@127.0.0.1:${proxyPort}/`;
    assert.equal(await run('natprox check', ['check', '--proxy-url', secretUrl, ...checkArgs]), 0);
    const twoProxies = ['--proxy-url', secretUrl, '--proxy-url', `http://x:${secret}@[::1]:1/`];
    assert.equal(
      await run('natprox check, two proxies', ['check', ...twoProxies, ...checkArgs]),
      1,
    );
    const configErrors = {
      'a proxy URL that does not parse': [`http://demo:${secret}@127.0.0.1:99999/`],
      'a proxy URL given twice': [secretUrl, secretUrl],
    };
    for (const [what, urls] of Object.entries(configErrors)) {
      const args = urls.flatMap((url) => ['--proxy-url', url]);
      assert.equal(await run(`client: ${what}`, ['client', ...args, ...checkArgs]), 2);
      assert.equal(await run(`check: ${what}`, ['check', ...args, ...checkArgs]), 2);
    }
    assert.equal(
      await run('config prometheus, a bad URL', [
        ...['config', 'prometheus', '--name', 'demo', '--port', '9090'],
        ...['--proxy-url', `http://prometheus:${secret}@vps:99999`],
      ]),
      2,
    );

    await page('client /metrics', metricsPort, '/metrics');
    for (const path of ['/metrics', '/', '/clients', '/api/v1/clients']) {
      await page(`proxy ${path}`, proxyPort, path);
    }
    // The refusals and scrapes are on the proxy's pages, so its log has them too by now.
    assert.ok(records(proxy).some((r) => r.status === 401));
    assert.ok(native.output().includes('natprox client starting'));
    assert.ok(
      records(native).some((r) => r.msg === 'connecting'),
      'debug lines are logged',
    );

    for (const [where, text] of seen) {
      for (const hidden of [secret, wrong]) {
        assert.ok(!text().includes(hidden), `${where} shows ${hidden}:\n${text()}`);
      }
    }
    assert.ok(seen.length >= 17, `looked in ${seen.length} places`);
  });
});

describe('how secrets are kept, at start', () => {
  let dir: string;
  const teardowns: Array<() => unknown> = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natprox-secret-modes-'));
  });
  after(async () => {
    for (const fn of teardowns.reverse()) await fn();
    await rm(dir, { recursive: true, force: true });
  });

  it('the client warns in its log, and natprox check on its line, about a readable token file', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'a-token\n');
    await chmod(tokenFile, 0o644);
    const args = ['--proxy-url', `http://127.0.0.1:${await deadPort()}`, '--allow', '9100'];
    const client = spawnNatprox(['client', ...args, '--token-file', tokenFile], (fn) =>
      teardowns.push(fn),
    );
    let warning: LogRecord | undefined;
    await eventually(
      () =>
        (warning = records(client).find((r) => /readable by everyone/.test(r.msg))) !== undefined,
      10_000,
      `the warning; output:\n${client.output()}`,
    );
    assert.equal(warning?.level, 40);
    assert.match(String(warning?.msg), new RegExp(`run chmod o-r ${tokenFile}`));
    const check = spawnNatprox(['check', ...args, '--token-file', tokenFile], (fn) =>
      teardowns.push(fn),
    );
    assert.equal(await within(check.exited, 20_000, 'natprox check'), 1);
    assert.match(check.output(), /✔ configuration: .*\n {2}→ .*readable by everyone/);
    await chmod(tokenFile, 0o666);
    const refused = spawnNatprox(['client', ...args, '--token-file', tokenFile], (fn) =>
      teardowns.push(fn),
    );
    assert.equal(await within(refused.exited, 10_000, 'the refused client'), 2);
    assert.match(refused.output(), new RegExp(`run chmod go-w ${tokenFile}`));
  });

  it('an open proxy on loopback warns once when requests arrive through a reverse proxy', async () => {
    const guarded = join(dir, 'guarded.yml');
    await writeFile(
      guarded,
      `listen: 127.0.0.1:0\nclients:\n  - names: [demo]\n    token_sha256: "${sha256('t')}"\nscrapers:\n  - bearer_sha256: "${sha256('b')}"\n`,
    );
    const open = spawnNatprox(['proxy', '--listen', '127.0.0.1:0'], (fn) => teardowns.push(fn));
    const closed = spawnNatprox(['proxy', '--config', guarded], (fn) => teardowns.push(fn));
    const forwarded = /a reverse proxy seems to make this loopback listener public/;
    for (const [proxy, warnings] of [
      [open, 1],
      [closed, 0],
    ] as const) {
      let listening: LogRecord | undefined;
      await eventually(
        () => (listening = records(proxy).find((r) => r.msg === 'proxy listening')) !== undefined,
        10_000,
        `the proxy to listen; output:\n${proxy.output()}`,
      );
      const port = Number(/:(\d+)$/.exec(String(listening?.address))?.[1]);
      await getOrigin(port, '/-/healthy', { 'x-forwarded-for': '203.0.113.7' });
      await getOrigin(port, '/-/healthy', { forwarded: 'for=203.0.113.7' });
      // A scrape nobody serves is logged after any warning the requests above caused.
      await scrapeThrough(port, 'http://nobody:9100/metrics', { 'x-real-ip': '203.0.113.7' });
      await eventually(
        () => records(proxy).some((r) => /^scrape/.test(r.msg) && r.outcome !== undefined),
        10_000,
        `the scrape logged; output:\n${proxy.output()}`,
      );
      const found = records(proxy).filter((r) => forwarded.test(r.msg));
      assert.equal(found.length, warnings, proxy.output());
      if (warnings > 0) assert.equal(found[0]?.header, 'x-forwarded-for');
    }
  });

  it('a proxy behind a reverse proxy (loopback, behind_reverse_proxy) refuses to run open', async () => {
    const config = join(dir, 'proxy.yml');
    await writeFile(config, 'listen: 127.0.0.1:0\nbehind_reverse_proxy: true\n');
    const proxy = spawnNatprox(['proxy', '--config', config], (fn) => teardowns.push(fn));
    assert.equal(await within(proxy.exited, 10_000, 'the proxy to exit'), 2);
    assert.match(proxy.output(), /refusing to listen on 127\.0\.0\.1:0 behind a reverse proxy/);
  });
});
