/**
 * Remote read through natprox, end to end, with real Prometheus servers (Debian's
 * prometheus) and natprox from its single-file build, each a process on loopback:
 *
 *   home Prometheus (scrapes itself, job "home") ◀── natprox client "home"
 *        (--allow 'POST PORT/api/v1/read' only)         ══▶ natprox proxy
 *                                                              ▲ proxy_url
 *   VPS Prometheus: remote_read http://home:PORT/api/v1/read (no scrapes of its own)
 *
 * The VPS Prometheus answers a query for the home job's series from remote read alone,
 * through the proxy and the client; the client's allowlist keeps refusing what it does not
 * grant (a GET of the same port, a POST to /-/quit), and the home Prometheus keeps running.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireDebianBinaries } from './helpers/debian-binaries.js';
import { freePort, poll, ProcessGroup } from './helpers/processes.js';
import { startPrometheus, type PrometheusServer } from './helpers/prometheus.js';
import { buildSingleFile, startSingleFile } from './helpers/single-file.js';

const NAME = 'home';

describe('remote read through natprox', () => {
  const group = new ProcessGroup();
  let dir = '';
  let proxyPort = 0;
  let home: PrometheusServer | undefined;
  let vps: PrometheusServer | undefined;

  async function step(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      console.error(`\n════ remote read: logs of every process ════\n${group.report()}\n`);
      throw err;
    }
  }

  before(async () => {
    const bin = requireDebianBinaries(['prometheus']);
    dir = mkdtempSync(join(tmpdir(), 'natprox-e2e-rr-'));
    await step(async () => {
      mkdirSync(join(dir, 'bin'));
      const bundle = buildSingleFile(join(dir, 'bin'));
      home = await startPrometheus(
        group,
        'home Prometheus',
        bin.prometheus,
        join(dir, 'home'),
        `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: home
    static_configs:
      - targets: ['127.0.0.1:0']
`,
      );
      proxyPort = await freePort();
      const proxy = startSingleFile(group, 'natprox proxy', bundle, [
        'proxy',
        '--listen',
        `127.0.0.1:${proxyPort}`,
        '--shutdown-grace',
        '1s',
      ]);
      await proxy.waitForLine(/proxy listening/, 10_000);
      const client = startSingleFile(group, 'natprox client', bundle, [
        'client',
        '--proxy-url',
        `http://127.0.0.1:${proxyPort}`,
        '--name',
        NAME,
        '--allow',
        `POST ${home.port}/api/v1/read`,
        '--shutdown-grace',
        '1s',
      ]);
      await client.waitForLine(/tunnel connected/, 10_000);
      vps = await startPrometheus(
        group,
        'VPS Prometheus',
        bin.prometheus,
        join(dir, 'vps'),
        `global:
  scrape_interval: 1s
remote_read:
  - url: http://${NAME}:${home.port}/api/v1/read
    proxy_url: http://127.0.0.1:${proxyPort}
    read_recent: true
`,
      );
    });
  });

  after(async () => {
    await group.stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the VPS Prometheus reads the home series through proxy and client', async () => {
    await step(async () => {
      assert.ok(home && vps);
      // The home Prometheus has "up" for its job after its first scrape; the VPS one has no
      // scrape of its own, so every sample it returns came through remote read.
      const series = await vps.waitFor(
        'up{job="home"}',
        (found) => (found.length > 0 ? found : undefined),
        20_000,
        'up{job="home"} read through natprox',
      );
      assert.equal(series[0]?.labels.job, 'home');
      assert.equal(series[0]?.labels.instance, '127.0.0.1:0');
    });
  });

  it('what the client does not grant stays refused, and the home Prometheus keeps running', async () => {
    await step(async () => {
      assert.ok(home);
      const through = async (method: string, path: string): Promise<number> => {
        const { request } = await import('node:http');
        return new Promise((resolve, reject) => {
          const req = request({
            host: '127.0.0.1',
            port: proxyPort,
            method,
            path: `http://${NAME}:${home?.port}${path}`,
            headers: { host: `${NAME}:${home?.port}` },
          });
          req.once('error', reject);
          req.once('response', (res) => {
            res.resume();
            res.once('end', () => resolve(res.statusCode ?? 0));
          });
          req.end();
        });
      };
      assert.equal(await through('POST', '/-/quit'), 403);
      assert.equal(await through('GET', '/api/v1/read'), 405);
      assert.equal(await through('GET', '/metrics'), 403);
      await poll(
        async () => ((await fetch(`${home?.url}/-/healthy`)).ok ? true : undefined),
        5000,
        'the home Prometheus to be healthy',
      );
    });
  });
});
