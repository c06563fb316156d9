/**
 * `natprox config prometheus|home` prints configuration that Debian's promtool (package
 * prometheus) accepts as a whole prometheus.yml. Runs the single-file build with plain node.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createTestCa, type TestCa } from '../test/helpers/tls-fixtures.js';
import { requireDebianBinaries } from './helpers/debian-binaries.js';
import { buildSingleFile } from './helpers/single-file.js';

interface Job {
  job_name: string;
  scheme?: string;
  basic_auth?: { username: string; password: string };
  honor_labels?: boolean;
  metrics_path?: string;
  params?: Record<string, string[]>;
  proxy_url?: string;
  tls_config?: { ca_file: string };
  static_configs?: Array<{ targets: string[] }>;
  http_sd_configs?: Array<{
    url: string;
    refresh_interval?: string;
    basic_auth?: { username: string; password: string };
    tls_config?: { ca_file: string };
  }>;
  relabel_configs?: Array<Record<string, unknown>>;
}

interface PrometheusYaml {
  global?: { external_labels?: Record<string, string> };
  scrape_configs: Job[];
  remote_read?: Array<Record<string, unknown>>;
}

const DEPLOY_DOC = fileURLToPath(new URL('../docs/deploy.md', import.meta.url));

/** The fenced code blocks of a Markdown text, in order. */
function fencedBlocks(markdown: string): Array<{ lang: string; text: string }> {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({
    lang: m[1] ?? '',
    text: m[2] ?? '',
  }));
}

/**
 * The arguments of the `natprox config …` command in a shell block (continued lines joined,
 * double quotes removed, $PASSWORD as the placeholder the doc shows), or undefined.
 */
function configCommandIn(shell: string): string[] | undefined {
  const line = shell
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .find((l) => l.startsWith('natprox config '));
  if (!line) return undefined;
  const words = line.replaceAll('$PASSWORD', 'PASSWORD').match(/"[^"]*"|\S+/g) ?? [];
  return words.slice(1).map((word) => word.replace(/^"(.*)"$/, '$1'));
}

describe('natprox config', () => {
  let promtool = '';
  let dir = '';
  let bundle = '';
  let ca: TestCa | undefined;

  before(() => {
    // Fails (never skips) naming the Debian package when promtool is missing.
    promtool = requireDebianBinaries(['promtool']).promtool;
    dir = mkdtempSync(join(tmpdir(), 'natprox-config-'));
    mkdirSync(join(dir, 'bin'));
    bundle = buildSingleFile(join(dir, 'bin'));
    ca = createTestCa();
  });

  after(() => {
    ca?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function natprox(args: string[]): { code: number | null; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8' });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  /** Writes `text` as prometheus.yml and runs `promtool check config` on it. */
  function promtoolAccepts(text: string, name: string): void {
    const file = join(dir, `${name}.yml`);
    writeFileSync(file, text);
    try {
      execFileSync(promtool, ['check', 'config', file], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      assert.fail(
        `promtool check config rejected ${name}:\n${stdout ?? ''}${stderr ?? ''}\n${text}`,
      );
    }
  }

  it('prometheus: federate, the proxy job, the http_sd job and remote_read pass promtool', () => {
    assert.ok(ca);
    const { code, stdout, stderr } = natprox([
      'config',
      'prometheus',
      '--proxy-url',
      'https://prometheus:s3cr%40t@vps.example:8443',
      '--name',
      'raspberrypi',
      '--name',
      'home-2',
      '--port',
      '9090',
      '--match',
      '{job="node"}',
      '--match',
      '{__name__=~"home:.+"}',
      '--ca-file',
      ca.certFile,
      '--label',
      'location=home',
      '--http-sd',
      '--remote-read',
    ]);
    assert.equal(code, 0, stderr);
    promtoolAccepts(stdout, 'vps-full');
    const config = parse(stdout) as PrometheusYaml;
    const [federate, proxyJob, sd] = config.scrape_configs;
    assert.deepEqual(federate, {
      job_name: 'federate',
      honor_labels: true,
      metrics_path: '/federate',
      params: { 'match[]': ['{job="node"}', '{__name__=~"home:.+"}'] },
      proxy_url: 'https://prometheus:s3cr%40t@vps.example:8443/',
      tls_config: { ca_file: ca.certFile },
      // Target labels: up{job="federate"} carries the site's label, not only the series.
      static_configs: [
        { targets: ['raspberrypi:9090', 'home-2:9090'], labels: { location: 'home' } },
      ],
    });
    assert.deepEqual(proxyJob, {
      job_name: 'natprox-proxy',
      scheme: 'https',
      basic_auth: { username: 'prometheus', password: 's3cr@t' },
      tls_config: { ca_file: ca.certFile },
      static_configs: [{ targets: ['vps.example:8443'] }],
    });
    assert.equal(sd?.job_name, 'natprox');
    assert.equal(sd?.proxy_url, 'https://prometheus:s3cr%40t@vps.example:8443/');
    assert.deepEqual(sd?.http_sd_configs, [
      {
        url: 'https://vps.example:8443/clients',
        refresh_interval: '5s',
        basic_auth: { username: 'prometheus', password: 's3cr@t' },
        tls_config: { ca_file: ca.certFile },
      },
    ]);
    // The federated names are left out: their series would be stored twice.
    assert.deepEqual(sd?.relabel_configs, [
      { source_labels: ['__meta_natprox_name'], regex: 'raspberrypi|home-2', action: 'drop' },
    ]);
    assert.deepEqual(config.remote_read, [
      {
        url: 'http://raspberrypi:9090/api/v1/read',
        proxy_url: 'https://prometheus:s3cr%40t@vps.example:8443/',
        read_recent: true,
        tls_config: { ca_file: ca.certFile },
      },
      {
        url: 'http://home-2:9090/api/v1/read',
        proxy_url: 'https://prometheus:s3cr%40t@vps.example:8443/',
        read_recent: true,
        tls_config: { ca_file: ca.certFile },
      },
    ]);
  });

  it('prometheus: --operator sets the credentials of /clients and the proxy job', () => {
    const { code, stdout, stderr } = natprox([
      'config',
      'prometheus',
      '--proxy-url',
      'http://prometheus:pw@127.0.0.1:8080',
      '--name',
      'raspberrypi',
      '--port',
      '9090',
      '--operator',
      'ops:op:pw',
      '--http-sd',
    ]);
    assert.equal(code, 0, stderr);
    promtoolAccepts(stdout, 'vps-operator');
    const [, proxyJob, sd] = (parse(stdout) as PrometheusYaml).scrape_configs;
    const ops = { username: 'ops', password: 'op:pw' };
    assert.deepEqual(proxyJob?.basic_auth, ops);
    assert.equal(proxyJob?.scheme, 'http');
    assert.deepEqual(proxyJob?.static_configs, [{ targets: ['127.0.0.1:8080'] }]);
    assert.deepEqual(sd?.http_sd_configs?.[0]?.basic_auth, ops);
  });

  it('prometheus: the minimal form passes promtool and federates {job="node"}', () => {
    const { code, stdout, stderr } = natprox([
      'config',
      'prometheus',
      '--proxy-url',
      'http://vps.example:8080',
      '--name',
      'raspberrypi',
      '--port',
      '9090',
    ]);
    assert.equal(code, 0, stderr);
    promtoolAccepts(stdout, 'vps-minimal');
    const config = parse(stdout) as PrometheusYaml;
    assert.deepEqual(
      config.scrape_configs.map((job) => job.job_name),
      ['federate', 'natprox-proxy'],
    );
    assert.equal(config.remote_read, undefined);
    assert.deepEqual(config.scrape_configs[0]?.params, { 'match[]': ['{job="node"}'] });
    assert.equal(config.scrape_configs[0]?.proxy_url, 'http://vps.example:8080/');
    assert.match(stdout, /USER:PASSWORD@/, 'says where scraper credentials go');
  });

  it('home: external labels and the node_exporter job pass promtool', () => {
    const { code, stdout, stderr } = natprox([
      'config',
      'home',
      '--label',
      'location=home',
      '--label',
      'site=flat 2',
    ]);
    assert.equal(code, 0, stderr);
    promtoolAccepts(stdout, 'home');
    const config = parse(stdout) as PrometheusYaml;
    assert.deepEqual(config.global?.external_labels, { location: 'home', site: 'flat 2' });
    assert.deepEqual(config.scrape_configs, [
      { job_name: 'node', static_configs: [{ targets: ['localhost:9100'] }] },
    ]);
  });

  it('docs/deploy.md shows exactly what each of its natprox config commands prints', () => {
    const blocks = fencedBlocks(readFileSync(DEPLOY_DOC, 'utf8'));
    let compared = 0;
    blocks.forEach((block, i) => {
      const command = block.lang === 'sh' ? configCommandIn(block.text) : undefined;
      if (!command) return;
      const shown = blocks[i + 1];
      assert.equal(shown?.lang, 'yaml', `the block after "${command.join(' ')}" is its output`);
      const { code, stdout, stderr } = natprox(command);
      assert.equal(code, 0, stderr);
      // The header comments explain; the doc explains in prose instead.
      const printed = stdout.replace(/^(#.*\n)+/, '');
      assert.equal(shown?.text, printed, `docs/deploy.md's output of ${command.join(' ')}`);
      compared += 1;
    });
    assert.ok(compared >= 2, `compared ${compared} commands (the VPS and the home config)`);
  });

  it("the single file carries zod's English messages only, and reports a bad config file in them", () => {
    const file = join(dir, 'bad-client.yml');
    writeFileSync(file, 'proxy_url: 5\nnames: [home]\nallow: nope\n');
    const { code, stderr } = natprox(['client', '--config', file]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, /proxy_url: Invalid input: expected string, received number/);
    assert.match(stderr, /allow: Invalid input: expected array, received string/);
    // zod/mini re-exports its ~45 locales; esbuild leaves out all but en.js, the one
    // src/config/schema.ts imports (classic zod brought them all: a fifth of the file, read on
    // every start). German stands for them (esbuild writes its umlaut as \xFC).
    assert.doesNotMatch(readFileSync(bundle, 'utf8'), /Ung(ü|\\xFC)ltige Eingabe/);
  });

  it('says what is wrong, with exit code 2, for bad or missing flags', () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['config', 'prometheus', '--proxy-url', 'http://vps:8080', '--name', 'pi'],
        /--port is required/,
      ],
      [['config', 'prometheus', '--name', 'pi', '--port', '9090'], /--proxy-url is required/],
      [
        [
          'config',
          'prometheus',
          '--proxy-url',
          'http://vps:8080',
          '--name',
          'Pi!',
          '--port',
          '9090',
        ],
        /--name: "Pi!" is not a valid name/,
      ],
      [
        [
          'config',
          'prometheus',
          '--proxy-url',
          'http://vps:8080',
          '--name',
          'pi',
          '--port',
          '99999',
        ],
        /--port: expected a port between 1 and 65535/,
      ],
      [
        [
          'config',
          'prometheus',
          '--proxy-url',
          'http://vps:8080',
          '--name',
          'pi',
          '--port',
          '9090',
          '--label',
          'instance=x',
        ],
        /"instance" is a reserved label/,
      ],
      [
        [
          'config',
          'prometheus',
          '--proxy-url',
          'http://vps:8080',
          '--name',
          'pi',
          '--port',
          '9090',
          '--operator',
          'ops',
        ],
        /--operator: expected USER:PASSWORD/,
      ],
      [['config', 'home'], /--label is required/],
      [['config', 'home', '--label', '__x=1'], /not a valid label name/],
      [['config', 'grafana'], /unknown config "grafana"/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = natprox(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message, args.join(' '));
    }
    const help = natprox(['config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /complete\s+prometheus\.yml/);
  });
});
