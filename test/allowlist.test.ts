import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Allowlist, unsafePath, type AllowedTarget } from '../src/client/allowlist.js';
import { NatproxClient } from '../src/client/natprox-client.js';
import { resolveClientSettings } from '../src/config/client-settings.js';
import { ConfigError } from '../src/errors.js';
import { REGISTRATION_HEADER, type Registration } from '../src/wire/protocol.js';

/** The allowlist the client would build from --allow flags. */
function fromFlags(...allow: string[]): Allowlist {
  const settings = resolveClientSettings({ 'proxy-url': 'http://127.0.0.1:8080', allow });
  return new Allowlist(settings.client.allow);
}

describe('Allowlist from --allow entries', () => {
  it('PORT means 127.0.0.1:PORT', () => {
    const list = fromFlags('9100');
    assert.deepEqual(list.targets, [{ host: '127.0.0.1', port: 9100 }]);
    assert.deepEqual(list.check(9100, '/metrics'), {
      allowed: true,
      target: { host: '127.0.0.1', port: 9100 },
    });
  });

  it('HOST:PORT keeps the host', () => {
    const list = fromFlags('192.168.1.5:9100', 'localhost:9090');
    assert.deepEqual(list.targets, [
      { host: '192.168.1.5', port: 9100 },
      { host: 'localhost', port: 9090 },
    ]);
    const decision = list.check(9090, '/federate?match[]=up');
    assert.equal(decision.allowed, true);
    assert.equal(decision.allowed && decision.target.host, 'localhost');
  });

  it('[::1]:PORT is an IPv6 host without brackets', () => {
    const list = fromFlags('[::1]:9100');
    assert.deepEqual(list.targets, [{ host: '::1', port: 9100 }]);
    assert.deepEqual(list.check(9100, '/metrics'), {
      allowed: true,
      target: { host: '::1', port: 9100 },
    });
  });

  it(':PORT means the default local host', () => {
    assert.deepEqual(fromFlags(':9100').targets, [{ host: '127.0.0.1', port: 9100 }]);
  });

  it('rejects entries that are not PORT or HOST:PORT, naming the flag', () => {
    for (const bad of ['node', 'host:', 'host:99999', '::1:9100', ':0', '0', 'a:b']) {
      assert.throws(
        () => fromFlags(bad),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message === `--allow: expected PORT or HOST:PORT, got "${bad}"`,
        bad,
      );
    }
  });

  it('refuses one port mapped to two hosts', () => {
    assert.throws(() => fromFlags('9100', '10.0.0.1:9100'), /port 9100 is allowed for both/);
    assert.throws(
      () =>
        new Allowlist([
          { host: '127.0.0.1', port: 9100 },
          { host: '::1', port: 9100 },
        ]),
      (err: unknown) =>
        err instanceof Error &&
        err.message.startsWith(
          'port 9100 is allowed for two hosts (127.0.0.1:9100 and [::1]:9100)',
        ),
    );
  });

  it('a port mapped to two hosts is a configuration error, coded so a caller can tell', () => {
    assert.throws(
      () =>
        new Allowlist([
          { host: '127.0.0.1', port: 9100 },
          { host: '10.0.0.1', port: 9100 },
        ]),
      (err: unknown) => err instanceof ConfigError && err.code === 'NATPROX_CONFIG_INVALID',
    );
  });

  it('accepts the same HOST:PORT twice', () => {
    const list = fromFlags('9100', '127.0.0.1:9100');
    assert.deepEqual(list.ports, [9100]);
  });
});

describe('Allowlist.check', () => {
  const list = new Allowlist([
    { host: '127.0.0.1', port: 9100 },
    { host: '127.0.0.1', port: 9090, pathPrefixes: ['/federate', '/metrics'] },
  ]);

  it('allows any path on a port without path prefixes', () => {
    for (const path of ['/metrics', '/', '/anything?x=1']) {
      assert.equal(list.check(9100, path).allowed, true, path);
    }
  });

  it('refuses a port that is not listed, saying which ports are allowed', () => {
    assert.deepEqual(list.check(22, '/metrics'), {
      allowed: false,
      reason:
        "port 22 is not on this client's allowlist (allowed ports: 9090, 9100); add --allow 22 on the client to permit it",
    });
  });

  it('with path prefixes, allows only paths under one of them', () => {
    assert.equal(list.check(9090, '/federate').allowed, true);
    assert.equal(list.check(9090, '/metrics').allowed, true);
    assert.equal(list.check(9090, '/metrics/extra').allowed, true);
    assert.deepEqual(list.check(9090, '/api/v1/admin/tsdb/delete_series'), {
      allowed: false,
      reason:
        'path "/api/v1/admin/tsdb/delete_series" on port 9090 is not allowed (allowed prefixes: /federate, /metrics)',
    });
  });

  it('a prefix is a whole path segment: /metrics does not cover /metricsx', () => {
    assert.equal(list.check(9090, '/metricsx').allowed, false);
    assert.equal(list.check(9090, '/federatez').allowed, false);
    const slash = new Allowlist([{ host: '127.0.0.1', port: 1, pathPrefixes: ['/a/'] }]);
    assert.equal(slash.check(1, '/a/b').allowed, true);
    assert.equal(slash.check(1, '/ab').allowed, false);
  });

  it('refuses paths that could resolve outside a prefix, on any port', () => {
    const cases: Array<[string, string]> = [
      ['/metrics/../api/v1/admin', 'it contains "." or ".." segments'],
      ['/metrics/%2e%2e/api', 'it contains "." or ".." segments'],
      ['/metrics/./x', 'it contains "." or ".." segments'],
      ['/metrics\\..\\admin', 'it contains a backslash or NUL'],
      ['/metrics%5c..', 'it contains a backslash or NUL'],
      ['/metrics%00', 'it contains a backslash or NUL'],
      ['/metrics%zz', 'it has an invalid percent-encoding'],
      ['metrics', 'a path must start with "/"'],
    ];
    for (const [path, why] of cases) {
      for (const port of [9090, 9100]) {
        assert.deepEqual(
          list.check(port, path),
          { allowed: false, reason: `path "${path}" refused: ${why}` },
          `${port} ${path}`,
        );
      }
    }
    assert.equal(unsafePath('/metrics'), undefined);
    assert.equal(unsafePath('/a..b/c.d'), undefined);
  });

  it('checks prefixes against the decoded path', () => {
    assert.equal(list.check(9090, '/%6detrics').allowed, true);
  });

  it('checkConnect allows only ports without path prefixes', () => {
    assert.equal(list.checkConnect(9100).allowed, true);
    const prefixed = list.checkConnect(9090);
    assert.equal(prefixed.allowed, false);
    assert.match(prefixed.allowed ? '' : prefixed.reason, /cannot be checked inside CONNECT/);
    const missing = list.checkConnect(22);
    assert.match(
      missing.allowed ? '' : missing.reason,
      /port 22 is not on this client's allowlist/,
    );
  });

  it('an empty allowlist refuses everything and says "none"', () => {
    const empty = new Allowlist([]);
    assert.deepEqual(empty.ports, []);
    const decision = empty.check(9100, '/metrics');
    assert.equal(decision.allowed, false);
    assert.match(decision.allowed ? '' : decision.reason, /allowed ports: none/);
  });
});

describe('Allowlist.ports (registered with the proxy)', () => {
  it('is sorted numerically and without duplicates', () => {
    const targets: AllowedTarget[] = [
      { host: '127.0.0.1', port: 9100 },
      { host: '127.0.0.1', port: 80 },
      { host: '127.0.0.1', port: 9090 },
      { host: '127.0.0.1', port: 9100 },
    ];
    assert.deepEqual(new Allowlist(targets).ports, [80, 9090, 9100]);
  });

  it('is the port list the client sends in its registration', async (t) => {
    const registrations: Registration[] = [];
    const server = http.createServer((req, res) => {
      const header = req.headers[REGISTRATION_HEADER];
      registrations.push(JSON.parse(Buffer.from(String(header), 'base64url').toString('utf8')));
      res.writeHead(503).end('not now');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const client = new NatproxClient({
      proxyUrl: new URL(`http://127.0.0.1:${port}`),
      names: ['demo'],
      allow: [
        { host: '127.0.0.1', port: 9100 },
        { host: '::1', port: 8080 },
        { host: '127.0.0.1', port: 9100, pathPrefixes: ['/metrics'] },
      ],
      backoff: { initialMs: 60_000, maxMs: 60_000, multiplier: 2, jitter: 0 },
    });
    assert.deepEqual(client.allowlist.ports, [8080, 9100]);
    client.start();
    const deadline = Date.now() + 5000;
    while (registrations.length === 0 && Date.now() < deadline) await sleep(5);
    await client.stop(0);
    assert.equal(registrations.length, 1);
    assert.deepEqual(registrations[0]?.ports, [8080, 9100]);
    assert.deepEqual(registrations[0]?.names, ['demo']);
  });
});

describe('--allow with methods and paths', () => {
  it('PORT/PATH limits the path; "METHODS PORT/PATH" grants methods there', () => {
    const list = fromFlags('9100', '9090/federate', 'POST 9090/api/v1/read');
    assert.deepEqual(list.targets, [
      { host: '127.0.0.1', port: 9100 },
      { host: '127.0.0.1', port: 9090, pathPrefixes: ['/federate'] },
      { host: '127.0.0.1', port: 9090, pathPrefixes: ['/api/v1/read'], methods: ['POST'] },
    ]);
    assert.deepEqual(list.ports, [9090, 9100]);
    assert.equal(list.check(9090, '/federate', 'GET').allowed, true);
    assert.equal(list.check(9090, '/federate', 'HEAD').allowed, true);
    assert.equal(list.check(9090, '/api/v1/read', 'POST').allowed, true);
    const wrongMethod = list.check(9090, '/api/v1/read', 'GET');
    assert.equal(wrongMethod.allowed, false);
    assert.deepEqual(!wrongMethod.allowed && wrongMethod.allowedMethods, ['POST']);
    const postFederate = list.check(9090, '/federate', 'POST');
    assert.deepEqual(!postFederate.allowed && postFederate.allowedMethods, ['GET', 'HEAD']);
    const quit = list.check(9090, '/-/quit', 'POST');
    assert.equal(quit.allowed, false);
    assert.equal(!quit.allowed && quit.allowedMethods, undefined, 'a path not granted: 403');
  });

  it('a port without methods allows GET and HEAD only, on every path', () => {
    const list = fromFlags('9100');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'get']) {
      const decision = list.check(9100, '/metrics', method);
      assert.equal(decision.allowed, false, method);
      assert.deepEqual(!decision.allowed && decision.allowedMethods, ['GET', 'HEAD'], method);
      assert.match(!decision.allowed ? decision.reason : '', /need an explicit grant/);
    }
  });

  it('several methods, a host, IPv6, lower case', () => {
    assert.deepEqual(fromFlags('GET,POST 192.168.1.5:9090/x').targets, [
      { host: '192.168.1.5', port: 9090, pathPrefixes: ['/x'], methods: ['GET', 'POST'] },
    ]);
    assert.deepEqual(fromFlags('post [::1]:9090/api/v1/read').targets, [
      { host: '::1', port: 9090, pathPrefixes: ['/api/v1/read'], methods: ['POST'] },
    ]);
    // GET brings HEAD along.
    const list = fromFlags('GET,POST 9090/x');
    assert.equal(list.check(9090, '/x', 'HEAD').allowed, true);
  });

  it('"PORT/" reads every path and refuses CONNECT (the bytes inside could be any method)', () => {
    const list = fromFlags('9090/');
    assert.equal(list.check(9090, '/metrics').allowed, true);
    assert.equal(list.check(9090, '/').allowed, true);
    assert.equal(list.checkConnect(9090).allowed, false);
    assert.equal(fromFlags('9090').checkConnect(9090).allowed, true);
  });

  it('refuses what it cannot read, naming the flag', () => {
    const cases: Array<[string, RegExp]> = [
      ['POST', /expected PORT or HOST:PORT/],
      ['POST 90x/x', /expected PORT or HOST:PORT/],
      ['PO-ST 9090/x', /"PO-ST" is not an HTTP method/],
      ['CONNECT 9090', /CONNECT is not a method to list/],
      [',POST 9090', /"" is not an HTTP method/],
      ['POST 9090/a/../b', /contains "\." or "\.\." segments/],
      ['POST 9090/x?y', /has a query or fragment/],
      ['POST 9090 extra', /expected \[METHODS \]\[HOST:\]PORT\[\/PATH\]/],
    ];
    for (const [text, expected] of cases) {
      assert.throws(
        () => fromFlags(text),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith('--allow: ') &&
          expected.test(err.message),
        text,
      );
    }
  });

  it('YAML entries: {port, paths, methods}, and the same strings as the flag', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'natprox-allow-'));
    const file = join(dir, 'client.yaml');
    await writeFile(
      file,
      'proxy_url: http://127.0.0.1:8080\nallow:\n  - 9090\n  - {port: 9090, paths: [/api/v1/read], methods: [POST]}\n  - "PUT 9090/x"\n',
    );
    const settings = resolveClientSettings({ config: file });
    assert.deepEqual(settings.client.allow, [
      { host: '127.0.0.1', port: 9090 },
      { host: '127.0.0.1', port: 9090, pathPrefixes: ['/api/v1/read'], methods: ['POST'] },
      { host: '127.0.0.1', port: 9090, pathPrefixes: ['/x'], methods: ['PUT'] },
    ]);
    await writeFile(
      file,
      'proxy_url: http://127.0.0.1:8080\nallow:\n  - {port: 9090, methods: [CONNECT]}\n',
    );
    assert.throws(() => resolveClientSettings({ config: file }), /allow\[0\]: methods: CONNECT/);
  });
});
