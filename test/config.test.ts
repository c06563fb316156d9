import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveClientSettings, type ClientFlags } from '../src/config/client-settings.js';
import { formatPath, loadYamlFile } from '../src/config/load-file.js';
import {
  DEFAULT_SHUTDOWN_GRACE_MS,
  resolveProxySettings,
  type ProxyFlags,
} from '../src/config/proxy-settings.js';
import { clientFileSchema, proxyFileSchema } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { DEFAULT_HEARTBEAT } from '../src/wire/heartbeat.js';
import { createTestCa } from './helpers/tls-fixtures.js';

const HASH_A = createHash('sha256').update('token-a').digest('hex');
const HASH_B = createHash('sha256').update('password-b').digest('hex');
const HASH_C = createHash('sha256').update('bearer-c').digest('hex');

let dir: string;
let counter = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natprox-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function yamlFile(text: string): Promise<string> {
  counter += 1;
  const file = join(dir, `config-${counter}.yaml`);
  await writeFile(file, text);
  return file;
}

/** Runs `fn`, expects a ConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'NATPROX_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

function proxyError(file: string, flags: ProxyFlags = {}): string {
  return configError(() => resolveProxySettings({ ...flags, config: file }));
}

function clientError(file: string, flags: ClientFlags = {}): string {
  return configError(() => resolveClientSettings({ ...flags, config: file }));
}

const PROXY_YAML = `
listen: "0.0.0.0:9999"
default_scrape_timeout: 20s
max_scrape_timeout: 1m30s
shutdown_grace: 500ms
public_names: [vps.example.com]
clients:
  - names: [raspberrypi, "home-*"]
    token_sha256: "${HASH_A}"
    max_names: 300
    max_tunnels: 600
scrapers:
  - username: prometheus
    password_sha256: "${HASH_B}"
  - bearer_sha256: "${HASH_C}"
operators:
  - bearer_sha256: "${HASH_C}"
limits:
  max_clients: 50
  max_streams_per_client: 10
  max_names_per_client: 4
  max_labels_per_client: 8
  max_ports_per_client: 16
  max_names_per_entry: 200
  max_tunnels_per_name: 2
long_poll:
  repoll_grace: 2s
  idle_timeout: 10m
`;

describe('proxy config file', () => {
  it('a full valid file loads to the expected settings', async () => {
    const settings = resolveProxySettings({ config: await yamlFile(PROXY_YAML) });
    assert.deepEqual(settings, {
      openToNetwork: false,
      proxy: {
        listen: { host: '0.0.0.0', port: 9999 },
        tls: undefined,
        defaultScrapeTimeoutMs: 20_000,
        maxScrapeTimeoutMs: 90_000,
        clientGrants: [
          {
            tokenSha256: HASH_A,
            names: ['raspberrypi', 'home-*'],
            maxNames: 300,
            maxTunnels: 600,
          },
        ],
        publicNames: ['vps.example.com'],
        scrapers: [{ username: 'prometheus', passwordSha256: HASH_B }, { bearerSha256: HASH_C }],
        operators: [{ bearerSha256: HASH_C }],
        limits: {
          maxClients: 50,
          maxStreamsPerClient: 10,
          maxNamesPerClient: 4,
          maxLabelsPerClient: 8,
          maxPortsPerClient: 16,
          maxNamesPerEntry: 200,
          maxTunnelsPerName: 2,
        },
        longPoll: { repollGraceMs: 2000 },
        heartbeat: DEFAULT_HEARTBEAT,
      },
      shutdownGraceMs: 500,
      warnings: [],
    });
  });

  it('no file at all gives the defaults', () => {
    assert.deepEqual(resolveProxySettings({}), {
      openToNetwork: false,
      proxy: {
        listen: { host: '127.0.0.1', port: 8080 },
        tls: undefined,
        defaultScrapeTimeoutMs: 15_000,
        maxScrapeTimeoutMs: 300_000,
        clientGrants: undefined,
        scrapers: undefined,
        operators: undefined,
        limits: {},
        longPoll: {},
        heartbeat: DEFAULT_HEARTBEAT,
      },
      shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
      warnings: [],
    });
  });

  it('an empty file, or one with only comments, means "no settings": the defaults', async () => {
    const defaults = resolveProxySettings({});
    assert.deepEqual(resolveProxySettings({ config: await yamlFile('') }), defaults);
    assert.deepEqual(resolveProxySettings({ config: await yamlFile('# nothing yet\n') }), defaults);
  });

  it('IPv6 listen addresses are accepted in brackets', async () => {
    const settings = resolveProxySettings({ config: await yamlFile('listen: "[::1]:8080"\n') });
    assert.deepEqual(settings.proxy.listen, { host: '::1', port: 8080 });
  });

  it('flags override the file', async () => {
    const file = await yamlFile(PROXY_YAML);
    const settings = resolveProxySettings({
      config: file,
      listen: '127.0.0.1:7000',
      'default-scrape-timeout': '5s',
      'max-scrape-timeout': '10s',
      'shutdown-grace': '2s',
      'heartbeat-interval': '1s',
    });
    assert.deepEqual(settings.proxy.listen, { host: '127.0.0.1', port: 7000 });
    assert.equal(settings.proxy.defaultScrapeTimeoutMs, 5000);
    assert.equal(settings.proxy.maxScrapeTimeoutMs, 10_000);
    assert.equal(settings.shutdownGraceMs, 2000);
    assert.deepEqual(settings.proxy.heartbeat, { ...DEFAULT_HEARTBEAT, intervalMs: 1000 });
    // What has no flag still comes from the file.
    assert.deepEqual(settings.proxy.clientGrants, [
      { tokenSha256: HASH_A, names: ['raspberrypi', 'home-*'], maxNames: 300, maxTunnels: 600 },
    ]);
  });

  it('a flag can override one duration while the file supplies the other', async () => {
    const file = await yamlFile('default_scrape_timeout: 20s\nmax_scrape_timeout: 1m\n');
    const settings = resolveProxySettings({ config: file, 'max-scrape-timeout': '2m' });
    assert.equal(settings.proxy.defaultScrapeTimeoutMs, 20_000);
    assert.equal(settings.proxy.maxScrapeTimeoutMs, 120_000);
  });

  it('a default scrape timeout above the maximum is refused', async () => {
    const message = configError(() =>
      resolveProxySettings({ 'default-scrape-timeout': '2m', 'max-scrape-timeout': '1m' }),
    );
    assert.equal(
      message,
      'the default scrape timeout (120000 ms) is longer than the maximum (60000 ms); lower --default-scrape-timeout or raise --max-scrape-timeout',
    );
  });

  it('bad flags name the flag', () => {
    assert.equal(
      configError(() => resolveProxySettings({ listen: 'localhost' })),
      '--listen: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "localhost"',
    );
    assert.equal(
      configError(() => resolveProxySettings({ 'heartbeat-interval': '4x' })),
      '--heartbeat-interval: expected a duration such as "15s" or "500ms", got "4x"',
    );
  });

  it('refuses to listen beyond loopback without clients: and scrapers:, unless --insecure', async () => {
    const message = configError(() => resolveProxySettings({ listen: '0.0.0.0:8080' }));
    assert.ok(
      message.startsWith(
        'refusing to listen on 0.0.0.0:8080 without "clients:" (client tokens) and "scrapers:" (scraper credentials) (no --config given)',
      ),
      message,
    );
    const file = await yamlFile(
      `listen: "0.0.0.0:8080"\nclients:\n  - names: ["*"]\n    token_sha256: "${HASH_A}"\n`,
    );
    const fileMessage = proxyError(file);
    assert.ok(
      fileMessage.startsWith(
        `refusing to listen on 0.0.0.0:8080 without "scrapers:" (scraper credentials) in ${file}`,
      ),
      fileMessage,
    );
    const insecure = resolveProxySettings({ listen: '0.0.0.0:8080', insecure: true });
    assert.equal(insecure.openToNetwork, true);
    for (const listen of ['127.0.0.1:8080', '127.1.2.3:8080', '[::1]:8080', 'localhost:8080']) {
      assert.equal(resolveProxySettings({ listen }).openToNetwork, false, listen);
    }
  });

  it('behind_reverse_proxy: true keeps the refusal on loopback: nginx makes it public', async () => {
    const file = await yamlFile('listen: 127.0.0.1:8080\nbehind_reverse_proxy: true\n');
    const message = proxyError(file);
    assert.ok(
      message.startsWith(
        `refusing to listen on 127.0.0.1:8080 behind a reverse proxy (behind_reverse_proxy: true) without "clients:" (client tokens) and "scrapers:" (scraper credentials) in ${file}`,
      ),
      message,
    );
    assert.ok(!message.includes('listen on 127.0.0.1,'), message);
    assert.equal(proxyError(file, { listen: '[::1]:8080' }).startsWith('refusing'), true);
    const insecure = resolveProxySettings({ config: file, insecure: true });
    assert.equal(insecure.openToNetwork, true);
    const guarded = await yamlFile(
      `listen: 127.0.0.1:8080\nbehind_reverse_proxy: true\nclients:\n  - names: ["*"]\n    token_sha256: "${HASH_A}"\nscrapers:\n  - bearer_sha256: "${HASH_C}"\n`,
    );
    assert.equal(resolveProxySettings({ config: guarded }).openToNetwork, false);
    const unset = await yamlFile('listen: 127.0.0.1:8080\nbehind_reverse_proxy: false\n');
    assert.equal(resolveProxySettings({ config: unset }).openToNetwork, false);
    const wrongType = await yamlFile('behind_reverse_proxy: "yes"\n');
    assert.match(proxyError(wrongType), /behind_reverse_proxy: expected true or false/);
  });

  it('limits.max_request_bytes takes a size', async () => {
    const sized = resolveProxySettings({
      config: await yamlFile('limits:\n  max_request_bytes: 1MiB\n'),
    });
    assert.equal(sized.proxy.limits?.maxRequestBytes, 1024 * 1024);
  });

  it('limits.max_response_bytes takes a size or a number', async () => {
    const sized = resolveProxySettings({
      config: await yamlFile('limits:\n  max_response_bytes: 512MiB\n'),
    });
    assert.equal(sized.proxy.limits?.maxResponseBytes, 512 * 1024 * 1024);
    const plain = resolveProxySettings({
      config: await yamlFile('limits:\n  max_response_bytes: 1000\n'),
    });
    assert.equal(plain.proxy.limits?.maxResponseBytes, 1000);
    const file = await yamlFile('limits:\n  max_response_bytes: lots\n');
    assert.equal(
      proxyError(file),
      `${file}: limits.max_response_bytes: expected a size such as "512MiB", "10MB" or a number of bytes, got "lots"`,
    );
  });

  it('the flood limits: max_streams_per_scraper, max_pipelined_requests, max_tunnel_control_bytes_per_second, flood_block', async () => {
    const settings = resolveProxySettings({
      config: await yamlFile(
        'limits:\n  max_streams_per_scraper: 8\n  max_pipelined_requests: 4\n  max_tunnel_control_bytes_per_second: 1MiB\n  flood_block: 30s\n',
      ),
    });
    assert.deepEqual(settings.proxy.limits, {
      maxStreamsPerScraper: 8,
      maxPipelinedRequests: 4,
      maxTunnelControlBytesPerSecond: 1024 * 1024,
      floodBlockMs: 30_000,
    });
    const off = resolveProxySettings({ config: await yamlFile('limits:\n  flood_block: 0\n') });
    assert.equal(off.proxy.limits?.floodBlockMs, 0);
    const file = await yamlFile('limits:\n  max_pipelined_requests: 0\n');
    assert.match(proxyError(file), /limits\.max_pipelined_requests/);
    const bad = await yamlFile('limits:\n  flood_block: lots\n');
    assert.equal(
      proxyError(bad),
      `${bad}: limits.flood_block: expected a duration such as "10s", or 0 to turn it off`,
    );
  });

  it('an unreadable TLS certificate names the file and the field', async () => {
    const missing = join(dir, 'no-cert.pem');
    const file = await yamlFile(`tls:\n  cert_file: ${missing}\n  key_file: ${missing}\n`);
    const message = proxyError(file);
    assert.ok(message.startsWith(`${file}: tls.cert_file: cannot read ${missing}: `), message);
  });

  describe('each error is one message naming the file, the field and what is expected', () => {
    it('wrong type', async () => {
      const file = await yamlFile('listen: 8080\n');
      assert.equal(proxyError(file), `${file}: listen: expected HOST:PORT`);
    });

    it('wrong type, nested', async () => {
      const file = await yamlFile('limits:\n  max_clients: ten\n');
      assert.equal(proxyError(file), `${file}: limits.max_clients: expected a whole number`);
    });

    it('a limit of 0 is too small, not the wrong type', async () => {
      const file = await yamlFile('limits:\n  max_clients: 0\n');
      assert.equal(
        proxyError(file),
        `${file}: limits.max_clients: expected a whole number above 0`,
      );
    });

    it('wrong type inside a list', async () => {
      const file = await yamlFile(`clients:\n  - names: [a]\n    token_sha256: "nothex"\n`);
      assert.equal(
        proxyError(file),
        `${file}: clients[0].token_sha256: expected 64 lowercase hex characters (a SHA-256)`,
      );
    });

    it('a credential of neither shape', async () => {
      const file = await yamlFile('scrapers:\n  - username: prometheus\n');
      assert.equal(
        proxyError(file),
        `${file}: scrapers[0]: expected {username, password_sha256} or {bearer_sha256}`,
      );
    });

    it('unknown field at the top level', async () => {
      const file = await yamlFile('listn: ":8080"\n');
      assert.equal(
        proxyError(file),
        `${file}: (top level): unknown field "listn": check the spelling against the documented settings`,
      );
    });

    it('unknown field, nested', async () => {
      const file = await yamlFile('limits:\n  max_client: 3\n');
      assert.equal(
        proxyError(file),
        `${file}: limits: unknown field "max_client": check the spelling against the documented settings`,
      );
    });

    it('bad duration like "15x"', async () => {
      const file = await yamlFile('default_scrape_timeout: 15x\n');
      assert.equal(
        proxyError(file),
        `${file}: default_scrape_timeout: expected a duration such as "15s", "1m30s" or "500ms", got "15x"`,
      );
    });

    it('a zero duration', async () => {
      const file = await yamlFile('shutdown_grace: 0s\n');
      assert.equal(
        proxyError(file),
        `${file}: shutdown_grace: expected a duration such as "15s", "1m30s" or "500ms", got "0s"`,
      );
    });

    it('a duration written as a number', async () => {
      const file = await yamlFile('shutdown_grace: 15\n');
      assert.equal(
        proxyError(file),
        `${file}: shutdown_grace: expected a duration such as "15s", "1m30s" or "500ms"`,
      );
    });

    it('bad host:port', async () => {
      const file = await yamlFile('listen: "localhost"\n');
      assert.equal(
        proxyError(file),
        `${file}: listen: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "localhost"`,
      );
    });

    it('port out of range', async () => {
      const file = await yamlFile('listen: "0.0.0.0:70000"\n');
      assert.equal(
        proxyError(file),
        `${file}: listen: expected a port between 0 and 65535, got "70000" in "0.0.0.0:70000"`,
      );
    });

    it("zod's own messages, where the schema gives none, are English", async () => {
      // zod/mini loads no locale by itself and then says only "Invalid input" (src/config/schema.ts).
      const file = await yamlFile('clients: 5\nlong_poll: []\n');
      assert.equal(
        proxyError(file),
        [
          `${file}: clients: Invalid input: expected array, received number`,
          `${file}: long_poll: Invalid input: expected object, received array`,
        ].join('\n'),
      );
    });

    it('YAML syntax error', async () => {
      const file = await yamlFile('listen: [a\n');
      const message = proxyError(file);
      assert.ok(message.startsWith(`${file}: not valid YAML: `), message);
      assert.match(message, /at line \d+, column \d+/);
    });

    it('duplicate keys are a YAML error', async () => {
      const file = await yamlFile('listen: ":1"\nlisten: ":2"\n');
      const message = proxyError(file);
      assert.ok(message.startsWith(`${file}: not valid YAML: Map keys must be unique`), message);
    });

    it('a document that is not a mapping', async () => {
      const file = await yamlFile('just a string\n');
      const message = proxyError(file);
      assert.ok(message.startsWith(`${file}: (top level): `), message);
      assert.match(message, /expected object/);
    });

    it('missing file', async () => {
      const file = join(dir, 'does-not-exist.yaml');
      const message = proxyError(file);
      assert.ok(message.startsWith(`${file}: cannot read the config file: `), message);
      assert.match(message, /ENOENT/);
    });
  });
});

describe('client config file', () => {
  it('a full valid file loads to the expected settings', async () => {
    const tokenFile = join(dir, 'client-token');
    await writeFile(tokenFile, 'tok-123\n', { mode: 0o600 });
    const file = await yamlFile(`
proxy_url: https://vps.example:8443/natprox
names: [raspberrypi, home-1]
allow:
  - 9100
  - "192.168.1.10:9090"
  - "[::1]:8080"
  - { port: 9200, paths: [/federate] }
  - { host: nas.lan, port: 9300 }
labels:
  location: home
  rack: r1
token_file: ${tokenFile}
metrics_listen: "127.0.0.1:9999"
shutdown_grace: 3s
`);
    const settings = resolveClientSettings({ config: file });
    assert.equal(settings.client.proxyUrl?.href, 'https://vps.example:8443/natprox');
    assert.deepEqual(settings, {
      client: {
        proxyUrl: settings.client.proxyUrl,
        names: ['raspberrypi', 'home-1'],
        allow: [
          { host: '127.0.0.1', port: 9100 },
          { host: '192.168.1.10', port: 9090 },
          { host: '::1', port: 8080 },
          { host: '127.0.0.1', port: 9200, pathPrefixes: ['/federate'] },
          { host: 'nas.lan', port: 9300 },
        ],
        labels: { location: 'home', rack: 'r1' },
        token: 'tok-123',
        tls: undefined,
        heartbeat: DEFAULT_HEARTBEAT,
      },
      metricsListen: { host: '127.0.0.1', port: 9999 },
      shutdownGraceMs: 3000,
      warnings: [],
    });
  });

  it('flags override the file (labels are merged, a flag label wins)', async () => {
    const fileToken = join(dir, 'file-token');
    const flagToken = join(dir, 'flag-token');
    await writeFile(fileToken, 'from-file\n');
    await writeFile(flagToken, 'from-flag\n');
    const file = await yamlFile(`
proxy_url: http://file.example:8080
names: [from-file]
allow: [9100]
labels: { location: home, rack: r1 }
token_file: ${fileToken}
metrics_listen: "127.0.0.1:9999"
shutdown_grace: 3s
`);
    const settings = resolveClientSettings({
      config: file,
      'proxy-url': 'http://flag.example:9090',
      name: ['from-flag', 'from-flag'],
      allow: ['9200', '[::1]:9300'],
      label: ['location=office', 'extra=a=b'],
      'token-file': flagToken,
      'metrics-listen': ':7777',
      'shutdown-grace': '1s',
      'heartbeat-interval': '2s',
    });
    assert.equal(settings.client.proxyUrl?.href, 'http://flag.example:9090/');
    assert.deepEqual(settings.client.names, ['from-flag']);
    assert.deepEqual(settings.client.allow, [
      { host: '127.0.0.1', port: 9200 },
      { host: '::1', port: 9300 },
    ]);
    assert.deepEqual(settings.client.labels, { location: 'office', rack: 'r1', extra: 'a=b' });
    assert.equal(settings.client.token, 'from-flag');
    assert.deepEqual(settings.metricsListen, { host: '0.0.0.0', port: 7777 });
    assert.equal(settings.shutdownGraceMs, 1000);
    assert.deepEqual(settings.client.heartbeat, { ...DEFAULT_HEARTBEAT, intervalMs: 2000 });
  });

  it('flags alone are enough, with defaults for the rest', () => {
    const settings = resolveClientSettings({
      'proxy-url': 'http://127.0.0.1:8080',
      name: ['demo'],
      allow: ['9100'],
    });
    assert.deepEqual(settings.client.labels, {});
    assert.equal(settings.client.token, undefined);
    assert.equal(settings.metricsListen, undefined);
    assert.equal(settings.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS);
    assert.deepEqual(settings.client.heartbeat, DEFAULT_HEARTBEAT);
  });

  it('tls_fingerprint is normalised, and TLS options need an https:// proxy URL', async () => {
    const pin = 'AB:'.repeat(31) + 'AB';
    const file = await yamlFile(
      `proxy_url: https://vps.example\nallow: [9100]\ntls_fingerprint: "${pin}"\n`,
    );
    const settings = resolveClientSettings({ config: file, name: ['a'] });
    assert.deepEqual(settings.client.tls, { ca: undefined, pinSha256: 'ab'.repeat(32) });
    const plain = await yamlFile(
      `proxy_url: http://vps.example\nallow: [9100]\ntls_fingerprint: "${pin}"\n`,
    );
    assert.match(clientError(plain, { name: ['a'] }), /apply to https:\/\/ proxy URLs/);
    const bad = await yamlFile(
      `proxy_url: https://vps.example\nallow: [9100]\ntls_fingerprint: "abc"\n`,
    );
    assert.equal(
      clientError(bad, { name: ['a'] }),
      `${bad}: tls_fingerprint: expected a SHA-256 fingerprint: 64 hex digits, with or without colons`,
    );
  });

  it('an empty file still needs proxy_url, and says so', async () => {
    const file = await yamlFile('');
    assert.equal(
      clientError(file),
      `--proxy-url is required (${file} has no proxy_url either): the address of natprox proxy, e.g. http://vps.example:8080`,
    );
  });

  it('a file with no allow entries is refused', async () => {
    const file = await yamlFile('proxy_url: http://x.example:8080\nnames: [a]\n');
    assert.match(clientError(file), /^nothing to scrape: give at least one --allow PORT/);
  });

  describe('each error is one message naming the file, the field and what is expected', () => {
    const base = 'proxy_url: http://x.example:8080\nnames: [a]\n';

    it('wrong type', async () => {
      const file = await yamlFile(`${base}labels: { location: [a, b] }\n`);
      assert.equal(clientError(file), `${file}: labels.location: expected a string label value`);
    });

    it('unknown field', async () => {
      const file = await yamlFile(`${base}allow: [9100]\nallows: [9200]\n`);
      assert.equal(
        clientError(file),
        `${file}: (top level): unknown field "allows": check the spelling against the documented settings`,
      );
    });

    it('unknown field inside an allow entry', async () => {
      const file = await yamlFile(`${base}allow: [{ port: 9100, hots: nas }]\n`);
      assert.equal(
        clientError(file),
        `${file}: allow[0]: unknown field "hots": check the spelling against the documented settings`,
      );
    });

    it('bad duration like "15x"', async () => {
      const file = await yamlFile(`${base}allow: [9100]\nshutdown_grace: 15x\n`);
      assert.equal(
        clientError(file),
        `${file}: shutdown_grace: expected a duration such as "15s", "1m30s" or "500ms", got "15x"`,
      );
    });

    it('bad host:port in allow', async () => {
      const file = await yamlFile(`${base}allow: [9100, "nas:http"]\n`);
      assert.equal(
        clientError(file),
        `${file}: allow[1]: expected PORT or HOST:PORT, got "nas:http"`,
      );
    });

    it('port 0 in allow', async () => {
      const file = await yamlFile(`${base}allow: [":0"]\n`);
      assert.equal(clientError(file), `${file}: allow[0]: expected PORT or HOST:PORT, got ":0"`);
    });

    it("zod's own messages, where the schema gives none, are English", async () => {
      const file = await yamlFile(
        'proxy_url: 5\nnames: [a]\nallow: [{ port: 70000 }, { port: 0 }]\n',
      );
      assert.equal(
        clientError(file),
        [
          `${file}: proxy_url: Invalid input: expected string, received number`,
          `${file}: allow[0].port: Too big: expected number to be <=65535`,
          `${file}: allow[1].port: Too small: expected number to be >=1`,
        ].join('\n'),
      );
    });

    it('port out of range in allow', async () => {
      const file = await yamlFile(`${base}allow: [99999]\n`);
      const message = clientError(file);
      assert.ok(message.startsWith(`${file}: allow[0]: `), message);
      assert.match(message, /65535/);
    });

    it('bad host:port in metrics_listen', async () => {
      const file = await yamlFile(`${base}allow: [9100]\nmetrics_listen: "::1:9999"\n`);
      assert.equal(
        clientError(file),
        `${file}: metrics_listen: IPv6 addresses need brackets: expected [ADDR]:PORT, got "::1:9999"`,
      );
    });

    it('invalid name', async () => {
      const file = await yamlFile(
        'proxy_url: http://x.example:8080\nnames: [Bad_Name]\nallow: [9100]\n',
      );
      assert.equal(
        clientError(file),
        `${file}: names[0]: "Bad_Name" is not a valid name: use a lower-case host name such as "raspberrypi" or "home-1.example"`,
      );
    });

    it('reserved label name', async () => {
      const file = await yamlFile(`${base}allow: [9100]\nlabels: { __x: y }\n`);
      assert.equal(
        clientError(file),
        `${file}: labels.__x: "__x" is not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", at most 128 characters`,
      );
    });

    it('job and instance are reserved: a client could pass itself off as another target', async () => {
      for (const label of ['job', 'instance']) {
        const file = await yamlFile(`${base}allow: [9100]\nlabels: { ${label}: node }\n`);
        assert.equal(
          clientError(file),
          `${file}: labels.${label}: "${label}" is a reserved label: Prometheus would let it override the ${label} label of the scrape job, so a client could pass itself off as another target; use another label name (e.g. "site") or set ${label} in the Prometheus job`,
        );
      }
      assert.throws(
        () =>
          resolveClientSettings({
            'proxy-url': 'http://x.example:8080',
            allow: ['9100'],
            label: ['job=node'],
          }),
        /--label: "job" is a reserved label/,
      );
    });

    it('a label value over 1024 characters', async () => {
      const file = await yamlFile(`${base}allow: [9100]\nlabels: { note: ${'x'.repeat(1025)} }\n`);
      assert.equal(
        clientError(file),
        `${file}: labels.note: label "note" has a value of 1025 characters; the limit is 1024`,
      );
    });

    it('a proxy_url that is not http(s)', async () => {
      const file = await yamlFile('proxy_url: ftp://x.example\nallow: [9100]\n');
      assert.equal(
        clientError(file),
        `${file}: proxy_url: expected an http:// or https:// URL, got ftp://`,
      );
    });

    it('a proxy_url that is not a URL', async () => {
      const file = await yamlFile('proxy_url: vps.example:8080:1\nallow: [9100]\n');
      const message = clientError(file);
      assert.ok(message.startsWith(`${file}: proxy_url: `), message);
    });

    it('an unreadable token_file', async () => {
      const missing = join(dir, 'no-such-token');
      const file = await yamlFile(`${base}allow: [9100]\ntoken_file: ${missing}\n`);
      const message = clientError(file);
      assert.ok(message.startsWith(`${file}: token_file: cannot read the token file: `), message);
    });

    it('YAML syntax error', async () => {
      const file = await yamlFile(`${base}allow: [9100\n`);
      assert.ok(clientError(file).startsWith(`${file}: not valid YAML: `));
    });

    it('missing file', () => {
      const file = join(dir, 'missing-client.yaml');
      assert.ok(clientError(file).startsWith(`${file}: cannot read the config file: ENOENT`));
    });

    // BUG: a port mapped to two hosts in the file's allow list is reported as "--allow: ..."
    // though no --allow flag was given; it should name the file and its allow field.
    it('one port mapped to two hosts in the file names the file, not --allow', async () => {
      const file = await yamlFile(`${base}allow: [9100, "10.0.0.1:9100"]\n`);
      const message = clientError(file);
      assert.ok(message.startsWith(`${file}: allow`), message);
      assert.doesNotMatch(message, /--allow:/);
    });
  });

  it('the same conflict given by flags names --allow', () => {
    const message = configError(() =>
      resolveClientSettings({ 'proxy-url': 'http://x:1', allow: ['9100', '10.0.0.1:9100'] }),
    );
    assert.equal(
      message,
      '--allow: port 9100 is allowed for both 127.0.0.1 and 10.0.0.1; a scrape names only the port, so each port may map to one host',
    );
  });

  it('bad flags name the flag', () => {
    const base = { 'proxy-url': 'http://x:1', allow: ['9100'] };
    assert.equal(
      configError(() => resolveClientSettings({ ...base, name: ['UPPER'] })),
      '--name: "UPPER" is not a valid name: use a lower-case host name such as "raspberrypi" or "home-1.example"',
    );
    assert.equal(
      configError(() => resolveClientSettings({ ...base, label: ['novalue'] })),
      '--label: expected KEY=VALUE, got "novalue"',
    );
    assert.equal(
      configError(() => resolveClientSettings({ ...base, 'proxy-url': 'nope' })),
      '--proxy-url: "nope" is not a URL; expected http://HOST:PORT or https://HOST (IPv6 as http://[ADDR]:PORT)',
    );
    assert.equal(
      configError(() => resolveClientSettings({ ...base, 'shutdown-grace': '1x' })),
      '--shutdown-grace: expected a duration such as "15s" or "500ms", got "1x"',
    );
  });
});

describe('loadYamlFile and formatPath', () => {
  it('formatPath renders keys and indexes', () => {
    assert.equal(formatPath([]), '(top level)');
    assert.equal(formatPath(['listen']), 'listen');
    assert.equal(formatPath(['clients', 2, 'token_sha256']), 'clients[2].token_sha256');
    assert.equal(formatPath([0, 'a', 1, 2]), '[0].a[1][2]');
  });

  it('returns the parsed and transformed data', async () => {
    const file = await yamlFile('listen: ":1"\nshutdown_grace: 1m30s\n');
    assert.deepEqual(loadYamlFile(file, proxyFileSchema), { listen: ':1', shutdown_grace: 90_000 });
  });

  it('reports every problem of a file, one line each, each naming the file', async () => {
    const file = await yamlFile('listen: 1\nshutdown_grace: 15x\nbogus: 1\n');
    const message = configError(() => loadYamlFile(file, proxyFileSchema));
    const lines = message.split('\n');
    assert.equal(lines.length, 3, message);
    for (const line of lines) assert.ok(line.startsWith(`${file}: `), line);
    assert.ok(lines.some((l) => l.startsWith(`${file}: listen: `)));
    assert.ok(lines.some((l) => l.startsWith(`${file}: shutdown_grace: `)));
    assert.ok(lines.some((l) => l.includes('unknown field "bogus"')));
  });

  it('names every unknown field in one message', async () => {
    const file = await yamlFile('a: 1\nb: 2\n');
    assert.equal(
      configError(() => loadYamlFile(file, clientFileSchema)),
      `${file}: (top level): unknown fields "a", "b": check the spelling against the documented settings`,
    );
  });
});

describe('secret files: how a token or key file is kept', () => {
  let secrets: string;
  before(async () => {
    secrets = await mkdtemp(join(tmpdir(), 'natprox-secret-files-'));
  });
  after(async () => {
    await rm(secrets, { recursive: true, force: true });
  });

  async function tokenFileWith(name: string, mode: number): Promise<string> {
    const file = join(secrets, name);
    await writeFile(file, 'tok-123\n');
    await chmod(file, mode); // not writeFile's mode: the umask would mask it
    return file;
  }

  function clientWith(tokenFile: string, extra: ClientFlags = {}) {
    return resolveClientSettings({
      'proxy-url': 'http://vps.example:8080',
      allow: ['9100'],
      'token-file': tokenFile,
      ...extra,
    });
  }

  it('a file only its owner can read is read without a word', async () => {
    const settings = clientWith(await tokenFileWith('private', 0o600));
    assert.equal(settings.client.token, 'tok-123');
    assert.deepEqual(settings.warnings, []);
  });

  it('refuses a token file its group or everyone can write, naming the chmod to run', async () => {
    for (const [mode, who] of [
      [0o620, 'its group'],
      [0o602, 'everyone'],
      [0o666, 'its group and everyone'],
    ] as const) {
      const file = await tokenFileWith(`writable-${mode.toString(8)}`, mode);
      const message = configError(() => clientWith(file));
      assert.equal(
        message,
        `--token-file: the token file ${file} is writable by ${who} (mode 0${mode.toString(8)}): whoever can write it can change the secret; run chmod go-w ${file} (0600, or 0640 owned by root with the service's group)`,
      );
    }
  });

  it('warns when everyone, or the group of a file root does not own, can read it', async () => {
    const everyone = await tokenFileWith('everyone', 0o644);
    assert.deepEqual(clientWith(everyone).warnings, [
      `--token-file: the token file ${everyone} is readable by everyone (mode 0644); run chmod o-r ${everyone}`,
    ]);
    const group = await tokenFileWith('group', 0o640);
    const groupWarning = `--token-file: the token file ${group} is readable by its group (mode 0640); run chmod g-r ${group}, or make root its owner and the service's group its group (chown root:natprox, mode 0640)`;
    if (process.getuid?.() === 0) {
      // Files root makes are root's: root:group 0640 is the deployment's way, no warning;
      // given to another owner, the same mode is worth one.
      assert.deepEqual(clientWith(group).warnings, []);
      await chown(group, 65534, 65534);
    }
    assert.deepEqual(clientWith(group).warnings, [groupWarning]);
  });

  it('warns about a symlink, and judges the file it points to', async () => {
    const target = await tokenFileWith('target', 0o600);
    const link = join(secrets, 'link');
    await symlink(target, link);
    const settings = clientWith(link);
    assert.equal(settings.client.token, 'tok-123');
    assert.deepEqual(settings.warnings, [
      `--token-file: the token file ${link} is a symlink to ${target}: whoever can change the link decides which file is read; give the file's own path`,
    ]);
    const writableTarget = await tokenFileWith('writable-target', 0o666);
    const writableLink = join(secrets, 'writable-link');
    await symlink(writableTarget, writableLink);
    assert.match(
      configError(() => clientWith(writableLink)),
      new RegExp(`the token file ${writableTarget} is writable by its group and everyone`),
    );
  });

  it("applies to the proxy's tls.key_file, and the client's --key-file", async () => {
    const ca = createTestCa();
    try {
      const server = ca.issue('server');
      const config = await yamlFile(
        `listen: 127.0.0.1:8443\ntls:\n  cert_file: ${server.certFile}\n  key_file: ${server.keyFile}\n`,
      );
      await chmod(server.keyFile, 0o600);
      assert.deepEqual(resolveProxySettings({ config }).warnings, []);
      await chmod(server.keyFile, 0o644);
      assert.deepEqual(resolveProxySettings({ config }).warnings, [
        `${config}: tls.key_file: the key file ${server.keyFile} is readable by everyone (mode 0644); run chmod o-r ${server.keyFile}`,
      ]);
      await chmod(server.keyFile, 0o660);
      assert.match(
        proxyError(config),
        new RegExp(
          `^${config}: tls.key_file: the key file ${server.keyFile} is writable by its group`,
        ),
      );
      const client = ca.issue('client', ['raspberrypi']);
      await chmod(client.keyFile, 0o646);
      const token = await tokenFileWith('with-key', 0o600);
      const flags = {
        'proxy-url': 'https://vps.example',
        'cert-file': client.certFile,
        'key-file': client.keyFile,
      };
      assert.match(
        configError(() => clientWith(token, flags)),
        /^--key-file: the key file .* is writable by everyone/,
      );
    } finally {
      ca.remove();
    }
  });

  it('applies to token_file and proxies[].token_file in the config, once per file', async () => {
    const shared = await tokenFileWith('shared', 0o644);
    const file = await yamlFile(
      `proxies:\n  - { url: "http://a.example:8080" }\n  - { url: "http://b.example:8080" }\ntoken_file: ${shared}\nallow: [9100]\n`,
    );
    const settings = resolveClientSettings({ config: file });
    assert.deepEqual(settings.warnings, [
      `${file}: token_file: the token file ${shared} is readable by everyone (mode 0644); run chmod o-r ${shared}`,
    ]);
    const writable = await tokenFileWith('entry-writable', 0o664);
    const perProxy = await yamlFile(
      `proxies:\n  - { url: "http://a.example:8080", token_file: ${writable} }\nallow: [9100]\n`,
    );
    assert.match(
      clientError(perProxy),
      new RegExp(
        `^${perProxy}: proxies\\[0\\]\\.token_file: the token file ${writable} is writable by its group`,
      ),
    );
  });
});
