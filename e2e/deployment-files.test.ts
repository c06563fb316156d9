/**
 * deploy/: the systemd units are valid (systemd-analyze verify, and the keys the deployment
 * relies on), and the example configs load with natprox's own config loader.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { resolveClientSettings } from '../src/config/client-settings.js';
import { resolveProxySettings } from '../src/config/proxy-settings.js';
import { createTestCa, type CertFiles, type TestCa } from '../test/helpers/tls-fixtures.js';

const DEPLOY = fileURLToPath(new URL('../deploy', import.meta.url));
const UNITS = ['natprox-proxy.service', 'natprox-client.service'] as const;
const NODE = '/usr/bin/node';

type Unit = Map<string, Map<string, string[]>>;

/** A small systemd unit parser: section → key → values (in order), comments dropped. */
function parseUnit(text: string, file: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1] as string, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(
      section && eq > 0,
      `${file}:${i + 1}: expected [Section] or Key=Value, got "${line}"`,
    );
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

describe('deploy/: systemd units and example configs', () => {
  let dir = '';
  let ca: TestCa | undefined;
  let cert: CertFiles;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'natprox-deploy-'));
    ca = createTestCa();
    cert = ca.issue('proxy', ['vps.example.com']);
  });

  after(() => {
    ca?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of UNITS) {
    const role = name === 'natprox-proxy.service' ? 'proxy' : 'client';

    it(`${name} has a dedicated user, Restart=always and the hardening options`, () => {
      const unit = parseUnit(readFileSync(join(DEPLOY, 'systemd', name), 'utf8'), name);
      const expect = (section: string, key: string, wanted: string | RegExp): void => {
        const got = value(unit, section, key);
        assert.ok(got !== undefined, `${name}: [${section}] ${key}= is missing`);
        if (typeof wanted === 'string') assert.equal(got, wanted, `${name}: [${section}] ${key}=`);
        else assert.match(got, wanted, `${name}: [${section}] ${key}=`);
      };
      expect('Unit', 'Description', /natprox/);
      expect('Unit', 'After', /network-online\.target/);
      expect('Unit', 'Wants', /network-online\.target/);
      expect('Service', 'User', 'natprox');
      expect('Service', 'Group', 'natprox');
      expect(
        'Service',
        'ExecStart',
        `${NODE} /usr/local/lib/natprox/natprox.mjs ${role} --config /etc/natprox/${role}.yml`,
      );
      expect('Service', 'Restart', 'always');
      for (const key of [
        'NoNewPrivileges',
        'ProtectHome',
        'PrivateTmp',
        'PrivateDevices',
        'ProtectKernelTunables',
        'ProtectKernelModules',
        'ProtectControlGroups',
        'RestrictNamespaces',
        'RestrictSUIDSGID',
        'LockPersonality',
      ]) {
        expect('Service', key, 'yes');
      }
      expect('Service', 'ProtectSystem', 'strict');
      expect('Service', 'CapabilityBoundingSet', '');
      expect('Service', 'RestrictAddressFamilies', /AF_INET AF_INET6/);
      expect('Service', 'SystemCallFilter', '@system-service');
      // V8's JIT needs writable and executable memory.
      assert.notEqual(value(unit, 'Service', 'MemoryDenyWriteExecute'), 'yes');
      if (role === 'proxy') expect('Service', 'ExecReload', '/bin/kill -HUP $MAINPID');
      expect('Install', 'WantedBy', 'multi-user.target');
    });
  }

  it('systemd-analyze verify accepts both units without a warning', () => {
    // A missing tool fails the test: passing without it would say nothing about the units.
    // `npm test` installs it (scripts/ensure-debian-packages.sh); it needs no running systemd.
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    assert.ok(
      !probe.error,
      `systemd-analyze is not installed (${probe.error?.message}): install Debian's systemd package (apt-get install -y systemd) or run scripts/ensure-debian-packages.sh`,
    );
    // verify checks that ExecStart's program exists; where Node is not /usr/bin/node (nvm,
    // setup-node …) check a copy that names this Node instead.
    const files = UNITS.map((name) => {
      const text = readFileSync(join(DEPLOY, 'systemd', name), 'utf8');
      const copy = join(dir, name);
      writeFileSync(copy, existsSync(NODE) ? text : text.replaceAll(NODE, process.execPath));
      return copy;
    });
    const result = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    const about = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => UNITS.some((name) => line.includes(name)));
    assert.equal(
      result.status,
      0,
      `systemd-analyze verify failed:\n${result.stdout}${result.stderr}`,
    );
    assert.deepEqual(about, [], 'systemd-analyze verify warned about the units');
  });

  it('deploy/proxy.yml loads with the real config loader and is not open to the network', () => {
    const config = parse(readFileSync(join(DEPLOY, 'proxy.yml'), 'utf8')) as {
      tls: { cert_file: string; key_file: string };
    };
    // Same file, with the certificate paths pointing at a test certificate.
    config.tls = { cert_file: cert.certFile, key_file: cert.keyFile };
    const file = join(dir, 'proxy.yml');
    writeFileSync(file, stringify(config));
    const settings = resolveProxySettings({ config: file });
    assert.equal(settings.openToNetwork, false);
    assert.deepEqual(settings.proxy.listen, { host: '0.0.0.0', port: 8443 });
    assert.ok(settings.proxy.tls, 'TLS is on');
    assert.deepEqual(
      settings.proxy.clientGrants?.map((grant) => grant.names),
      [['raspberrypi']],
    );
    assert.equal(settings.proxy.scrapers?.length, 1);
  });

  it('deploy/client.yml loads with the real config loader', () => {
    const config = parse(readFileSync(join(DEPLOY, 'client.yml'), 'utf8')) as {
      token_file: string;
    };
    assert.equal(config.token_file, '/etc/natprox/token');
    const token = join(dir, 'token');
    writeFileSync(token, 'a-token\n');
    config.token_file = token;
    const file = join(dir, 'client.yml');
    writeFileSync(file, stringify(config));
    const { client } = resolveClientSettings({ config: file });
    assert.equal(client.proxyUrl?.href, 'https://vps.example.com:8443/');
    assert.deepEqual(client.names, ['raspberrypi']);
    assert.deepEqual(client.labels, { location: 'home' });
    assert.equal(client.token, 'a-token');
    // GET /federate and POST /api/v1/read (remote read) on the home Prometheus, node_exporter.
    assert.deepEqual(
      client.allow.map(
        (t) =>
          `${(t.methods ?? ['GET', 'HEAD']).join(',')} ${t.host}:${t.port}${(t.pathPrefixes ?? []).join(',')}`,
      ),
      [
        'GET,HEAD 127.0.0.1:9090/federate',
        'POST 127.0.0.1:9090/api/v1/read',
        'GET,HEAD 127.0.0.1:9100',
      ],
    );
  });
});
