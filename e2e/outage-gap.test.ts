/**
 * Gap-free history: the home link goes down for 30 s and comes back. The VPS Prometheus
 * configured as `natprox config prometheus --remote-read` prints then answers a range query
 * over the outage with the home's samples (read through the tunnel from the home
 * Prometheus); the same configuration without --remote-read shows the gap. Real processes:
 * Debian's prometheus and prometheus-node-exporter, natprox from the single-file build.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { requireDebianBinaries } from './helpers/debian-binaries.js';
import { freePorts, poll, ProcessGroup, type RunningProcess } from './helpers/processes.js';
import { startPrometheus, type PrometheusServer } from './helpers/prometheus.js';
import { buildSingleFile, startSingleFile } from './helpers/single-file.js';

const NAME = 'raspberrypi';
const OUTAGE_MS = 30_000;
/**
 * Steps that hold a real sample: federated samples keep the home's timestamps, which get no
 * staleness markers, so a plain range query would fill a gap with the last value before it.
 */
const ON_VPS = 'count_over_time(node_load1{location="home"}[1s])';
/** The same at home, where the series has no external label yet. */
const AT_HOME = 'count_over_time(node_load1[1s])';

describe('an outage of the home link leaves no gap with remote read', () => {
  const group = new ProcessGroup();
  let dir = '';
  let bundle = '';
  let clientArgs: string[] = [];
  let client: RunningProcess | undefined;
  let home: PrometheusServer | undefined;
  const vps: Record<'withRemoteRead' | 'federationOnly', PrometheusServer | undefined> = {
    withRemoteRead: undefined,
    federationOnly: undefined,
  };

  async function step(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      console.error(`\n════ outage gap: logs of every process ════\n${group.report()}\n`);
      throw err;
    }
  }

  const natprox = (args: string[]): string =>
    execFileSync(process.execPath, [bundle, ...args], { encoding: 'utf8' });

  /** A whole prometheus.yml from `natprox config`, scraping (and evaluating) every second. */
  const everySecond = (yaml: string): string => {
    const config = parse(yaml) as Record<string, unknown>;
    const global = (config.global ?? {}) as Record<string, unknown>;
    config.global = { ...global, scrape_interval: '1s', scrape_timeout: '1s' };
    return stringify(config);
  };

  before(async () => {
    const bin = requireDebianBinaries(['prometheus', 'prometheus-node-exporter']);
    dir = mkdtempSync(join(tmpdir(), 'natprox-e2e-gap-'));
    await step(async () => {
      mkdirSync(join(dir, 'bin'));
      bundle = buildSingleFile(join(dir, 'bin'));
      const [nodePort, proxyPort] = (await freePorts(2)) as [number, number];
      group.start('node_exporter', bin['prometheus-node-exporter'], [
        `--web.listen-address=127.0.0.1:${nodePort}`,
        '--no-collector.systemd',
      ]);
      home = await startPrometheus(
        group,
        'home Prometheus',
        bin.prometheus,
        join(dir, 'home'),
        everySecond(
          natprox([
            'config',
            'home',
            '--label',
            'location=home',
            '--node-exporter',
            `127.0.0.1:${nodePort}`,
          ]),
        ),
      );
      const proxy = startSingleFile(group, 'natprox proxy', bundle, [
        'proxy',
        '--listen',
        `127.0.0.1:${proxyPort}`,
        '--shutdown-grace',
        '1s',
      ]);
      await proxy.waitForLine(/proxy listening/, 10_000);
      clientArgs = [
        'client',
        '--proxy-url',
        `http://127.0.0.1:${proxyPort}`,
        '--name',
        NAME,
        '--allow',
        `${home.port}/federate`,
        '--allow',
        `POST ${home.port}/api/v1/read`,
        '--shutdown-grace',
        '1s',
      ];
      client = startSingleFile(group, 'natprox client', bundle, clientArgs);
      await client.waitForLine(/tunnel connected/, 10_000);
      const vpsArgs = [
        'config',
        'prometheus',
        '--proxy-url',
        `http://127.0.0.1:${proxyPort}`,
        '--name',
        NAME,
        '--port',
        String(home.port),
        '--label',
        'location=home',
      ];
      vps.withRemoteRead = await startPrometheus(
        group,
        'VPS Prometheus (remote read)',
        bin.prometheus,
        join(dir, 'vps-rr'),
        everySecond(natprox([...vpsArgs, '--remote-read'])),
      );
      vps.federationOnly = await startPrometheus(
        group,
        'VPS Prometheus (federation only)',
        bin.prometheus,
        join(dir, 'vps-federate'),
        everySecond(natprox(vpsArgs)),
      );
    });
  });

  after(async () => {
    await group.stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a range query over a 30 s outage returns every step the home Prometheus has', () =>
    step(async () => {
      const { withRemoteRead, federationOnly } = vps;
      assert.ok(home && withRemoteRead && federationOnly && client);
      for (const server of [withRemoteRead, federationOnly]) {
        await server.waitFor(
          `up{job="federate"} == 1`,
          (found) => (found.length > 0 ? true : undefined),
          20_000,
          'federation up',
        );
      }
      const stoppedAt = await client.stop('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      client = startSingleFile(group, 'natprox client (again)', bundle, clientArgs);
      await client.waitForLine(/tunnel connected/, 10_000);
      const backAt = Date.now();
      await federationOnly.waitFor(
        `up{job="federate"} == 1`,
        (found) => (found.length > 0 ? true : undefined),
        10_000,
        'federation up again',
      );
      // The outage window, whole seconds, 1 s steps.
      const start = Math.ceil(stoppedAt / 1000) * 1000;
      const end = Math.floor(backAt / 1000) * 1000;
      const steps = async (server: PrometheusServer): Promise<Set<number>> => {
        const [series] = await server.queryRange(server === home ? AT_HOME : ON_VPS, start, end, 1);
        return new Set((series?.samples ?? []).map((s) => s.atMs));
      };
      const atHome = await steps(home);
      const read = await poll(
        async () => {
          const found = await steps(withRemoteRead);
          return [...atHome].every((at) => found.has(at)) ? found : undefined;
        },
        10_000,
        'the remote-read VPS to have every step the home Prometheus has',
      ).catch(async () => steps(withRemoteRead));
      const federated = await steps(federationOnly);
      const missing = [...atHome].filter((at) => !read.has(at));
      const total = (end - start) / 1000 + 1;
      console.log(
        `outage ${((backAt - stoppedAt) / 1000).toFixed(1)} s, ${total} steps: home has ${atHome.size}, ` +
          `VPS with remote read ${read.size} (missing ${missing.length}), federation only ${federated.size}`,
      );
      assert.ok(atHome.size >= total - 2, `the home Prometheus kept scraping (${atHome.size})`);
      assert.deepEqual(
        missing.map((at) => new Date(at).toISOString()),
        [],
        'steps the home has and the VPS with remote read does not',
      );
      assert.ok(
        federated.size <= atHome.size - 20,
        `without remote read the outage is a gap (${federated.size} of ${atHome.size} steps)`,
      );
    }));
});
