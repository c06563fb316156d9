/**
 * The reference deployment, end to end, with real Prometheus servers (Debian's prometheus and
 * prometheus-node-exporter packages) and natprox run from its single-file build with plain
 * `node`, every piece a separate process on loopback:
 *
 *   node_exporter ◀── home Prometheus (external_labels {location: home})
 *                         ▲ /federate
 *   natprox client "raspberrypi" (allows only those two ports) ══TLS══▶ natprox proxy
 *                                                                          ▲ proxy_url
 *   natprox client "attic" (a site without a Prometheus: node_exporter only)
 *   VPS Prometheus: exactly what `natprox config prometheus … --http-sd` prints: job
 *   "federate", job "natprox-proxy" (the proxy's /metrics) and job "natprox" (http_sd, which
 *   scrapes attic and leaves the federated raspberrypi out)
 *
 * Assertions go through the VPS Prometheus's query API; `up` timing is checked on the raw
 * samples' timestamps (the start of each scrape), so polling latency cannot blur it.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { DASHBOARDS, dashboardQueries } from '../test/helpers/dashboards.js';
import { createTestCa, type CertFiles, type TestCa } from '../test/helpers/tls-fixtures.js';
import { requireDebianBinaries } from './helpers/debian-binaries.js';
import { freePorts, poll, ProcessGroup, type RunningProcess } from './helpers/processes.js';
import { startPrometheus, type PrometheusServer, type Series } from './helpers/prometheus.js';
import { buildSingleFile, startSingleFile } from './helpers/single-file.js';

/** The VPS Prometheus's scrape interval; the home one scrapes node_exporter every second. */
const INTERVAL_MS = 2000;
const NAME = 'raspberrypi';
/** A second site without a home Prometheus, scraped through the http_sd job. */
const ATTIC = 'attic';
/** How long before a scheduled scrape the proxy restart begins (see that test). */
const PROXY_RESTART_LEAD_MS = 250;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const secret = (): string => randomBytes(16).toString('hex');
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

describe('reference deployment: home metrics federated to a VPS Prometheus through natprox', () => {
  const group = new ProcessGroup();
  let dir = '';
  let ca: TestCa | undefined;
  let proxyCert: CertFiles;
  let bundle = '';
  let ports: { node: number; proxy: number };
  let home: PrometheusServer | undefined;
  let vps: PrometheusServer | undefined;
  let proxy: RunningProcess;
  let client: RunningProcess;
  let clientArgs: string[] = [];
  let attic: RunningProcess | undefined;
  let proxyArgs: string[] = [];
  const scraperPassword = secret();
  const operatorPassword = secret();

  /** Every process's relevant log lines and both Prometheus's targets, printed on failure. */
  async function failureReport(): Promise<string> {
    const targets: string[] = [];
    for (const [name, server] of [
      ['home Prometheus', home],
      ['VPS Prometheus', vps],
    ] as const) {
      if (!server) continue;
      try {
        targets.push(`${name} targets:\n${await server.targetsSummary()}`);
      } catch (err) {
        targets.push(`${name} targets: unavailable (${(err as Error).message})`);
      }
    }
    return `\n════ reference deployment: logs of every process ════\n${group.report()}\n${targets.join('\n')}\n`;
  }

  /** Runs a step; when it fails, prints what every process logged before failing the test. */
  async function step(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      console.error(await failureReport());
      throw err;
    }
  }

  const startProxy = (): RunningProcess =>
    startSingleFile(group, 'natprox proxy', bundle, proxyArgs);
  const startClient = (): RunningProcess =>
    startSingleFile(group, 'natprox client', bundle, clientArgs);

  before(async () => {
    // Fails (never skips) naming the Debian packages when they are missing.
    const bin = requireDebianBinaries(['prometheus', 'prometheus-node-exporter']);
    dir = mkdtempSync(join(tmpdir(), 'natprox-e2e-'));
    await step(async () => {
      mkdirSync(join(dir, 'bin'));
      bundle = buildSingleFile(join(dir, 'bin'));
      ca = createTestCa();
      proxyCert = ca.issue('proxy', ['localhost', '127.0.0.1']);
      const [node, proxyPort] = await freePorts(2);
      ports = { node: node as number, proxy: proxyPort as number };

      // node_exporter
      const exporter = group.start('node_exporter', bin['prometheus-node-exporter'], [
        `--web.listen-address=127.0.0.1:${ports.node}`,
        // Debian turns the systemd collector on; without a system bus it only logs errors.
        '--no-collector.systemd',
      ]);
      await poll(
        async () => {
          if (!exporter.running) throw new Error('node_exporter exited during start-up');
          const res = await fetch(`http://127.0.0.1:${ports.node}/metrics`);
          return res.ok ? true : undefined;
        },
        15_000,
        'node_exporter to serve /metrics',
      );

      // The home Prometheus, configured by `natprox config home` (run from the bundle).
      const homeYaml = execFileSync(
        process.execPath,
        [
          bundle,
          'config',
          'home',
          '--label',
          'location=home',
          '--node-exporter',
          `127.0.0.1:${ports.node}`,
        ],
        { encoding: 'utf8' },
      );
      const homeConfig = parse(homeYaml) as { global: Record<string, unknown> };
      homeConfig.global.scrape_interval = '1s';
      homeConfig.global.scrape_timeout = '1s';
      home = await startPrometheus(
        group,
        'home Prometheus',
        bin.prometheus,
        join(dir, 'home'),
        stringify(homeConfig),
      );

      // natprox proxy: TLS, a client token for "raspberrypi", scraper and operator credentials.
      const token = randomBytes(32).toString('base64url');
      writeFileSync(join(dir, 'client.token'), `${token}\n`, { mode: 0o600 });
      writeFileSync(
        join(dir, 'proxy.yml'),
        stringify({
          listen: `127.0.0.1:${ports.proxy}`,
          tls: { cert_file: proxyCert.certFile, key_file: proxyCert.keyFile },
          clients: [{ names: [NAME, ATTIC], token_sha256: sha256(token) }],
          scrapers: [{ username: 'prometheus', password_sha256: sha256(scraperPassword) }],
          operators: [{ username: 'sd', password_sha256: sha256(operatorPassword) }],
        }),
      );
      proxyArgs = ['proxy', '--config', join(dir, 'proxy.yml'), '--shutdown-grace', '1s'];
      proxy = startProxy();
      await proxy.waitForLine(/proxy listening/, 10_000);

      // natprox client: only the home Prometheus and node_exporter ports.
      clientArgs = [
        'client',
        '--proxy-url',
        `https://127.0.0.1:${ports.proxy}`,
        '--ca-file',
        ca.certFile,
        '--token-file',
        join(dir, 'client.token'),
        '--name',
        NAME,
        '--allow',
        String(home.port),
        '--allow',
        String(ports.node),
        '--label',
        'location=home',
        '--shutdown-grace',
        '1s',
      ];
      client = startClient();
      await client.waitForLine(/tunnel connected/, 10_000);

      // A second site: only node_exporter, with its own location label.
      attic = startSingleFile(group, 'natprox client attic', bundle, [
        ...clientArgs.slice(0, clientArgs.indexOf('--name')),
        '--name',
        ATTIC,
        '--allow',
        String(ports.node),
        '--label',
        'location=attic',
        '--shutdown-grace',
        '1s',
      ]);
      await attic.waitForLine(/tunnel connected/, 10_000);

      // The VPS Prometheus: exactly what `natprox config prometheus` prints, with a shorter
      // scrape interval for the test.
      const vpsYaml = execFileSync(
        process.execPath,
        [
          bundle,
          'config',
          'prometheus',
          '--proxy-url',
          `https://prometheus:${scraperPassword}@localhost:${ports.proxy}`,
          '--name',
          NAME,
          '--port',
          String(home.port),
          '--label',
          'location=home',
          '--operator',
          `sd:${operatorPassword}`,
          '--ca-file',
          ca.certFile,
          '--http-sd',
        ],
        { encoding: 'utf8' },
      );
      const vpsConfig = parse(vpsYaml) as Record<string, unknown>;
      vpsConfig.global = {
        scrape_interval: `${INTERVAL_MS / 1000}s`,
        scrape_timeout: `${INTERVAL_MS / 1000}s`,
        evaluation_interval: `${INTERVAL_MS / 1000}s`,
      };
      vps = await startPrometheus(
        group,
        'VPS Prometheus',
        bin.prometheus,
        join(dir, 'vps'),
        stringify(vpsConfig),
      );
    });
  });

  after(async () => {
    await group.stopAll();
    ca?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const vpsServer = (): PrometheusServer => {
    assert.ok(vps, 'the VPS Prometheus did not start');
    return vps;
  };

  /** Polls up{job=…} on the VPS until it is `value`; bounded. */
  const waitUp = (job: string, value: 0 | 1, timeoutMs: number): Promise<true> =>
    vpsServer().waitFor(
      `up{job="${job}"}`,
      (series) => (series[0]?.samples[0]?.value === value ? true : undefined),
      timeoutMs,
      `up{job="${job}"} == ${value}`,
    );

  /** The raw up{job="federate"} samples of the last minute, oldest first. */
  async function federateUpSamples(): Promise<Series['samples']> {
    const series = await vpsServer().rawSamples('up{job="federate"}', 60);
    assert.equal(series.length, 1, 'one up{job="federate"} series');
    return series[0]?.samples ?? [];
  }

  /**
   * Checks, on the scrape timestamps, that the first scrape after `downAtMs` saw up == 0 and
   * came within one interval; returns how long after `downAtMs` that scrape started.
   */
  async function assertDownAtNextScrape(downAtMs: number, what: string): Promise<number> {
    await poll(
      async () => ((await federateUpSamples()).some((s) => s.atMs > downAtMs) ? true : undefined),
      2 * INTERVAL_MS + 5000,
      `a scrape after ${what}`,
    );
    const after = (await federateUpSamples()).filter((s) => s.atMs > downAtMs);
    const next = after[0];
    assert.ok(next, `a scrape after ${what}`);
    assert.equal(
      next.value,
      0,
      `the first scrape after ${what} (at +${next.atMs - downAtMs} ms) has up 0`,
    );
    assert.ok(
      next.atMs - downAtMs <= INTERVAL_MS + 500,
      `the next scrape after ${what} came ${next.atMs - downAtMs} ms later, expected within one interval (${INTERVAL_MS} ms)`,
    );
    return next.atMs - downAtMs;
  }

  /**
   * Checks, on the scrape timestamps, that up stayed 0 from `downAtMs` until `backAtMs` and the
   * first scrape with up 1 started within two intervals of `backAtMs`; returns how long after.
   */
  async function assertUpWithinTwoIntervals(
    downAtMs: number,
    backAtMs: number,
    what: string,
  ): Promise<number> {
    await waitUp('federate', 1, 2 * INTERVAL_MS + 5000);
    const since = (await federateUpSamples()).filter((s) => s.atMs > downAtMs);
    const whileDown = since.filter((s) => s.atMs < backAtMs);
    assert.ok(
      whileDown.every((s) => s.value === 0),
      `up stayed 0 while ${what} was down: ${JSON.stringify(whileDown)}`,
    );
    const firstUp = since.find((s) => s.value === 1);
    assert.ok(firstUp, 'a scrape with up 1');
    const tookMs = firstUp.atMs - backAtMs;
    assert.ok(
      tookMs <= 2 * INTERVAL_MS,
      `up returned to 1 ${tookMs} ms after ${what} was back, expected within two scrape intervals (${2 * INTERVAL_MS} ms)`,
    );
    return tookMs;
  }

  /**
   * Waits (at most one interval) until `leadMs` before the VPS's next scheduled federate
   * scrape; Prometheus scrapes each target at a fixed phase. Resolves with that scrape's time.
   */
  async function sleepUntilBeforeNextScrape(leadMs: number): Promise<number> {
    const last = (await federateUpSamples()).at(-1);
    assert.ok(last, 'a federate scrape so far');
    let next = last.atMs + INTERVAL_MS;
    while (next - leadMs < Date.now() + 20) next += INTERVAL_MS;
    await new Promise((resolve) => setTimeout(resolve, next - leadMs - Date.now()));
    return next;
  }

  it('federates the home node_exporter series with location="home" and up{job="federate"} == 1', () =>
    step(async () => {
      const server = vpsServer();
      const series = await server.waitFor(
        'node_exporter_build_info{location="home", job="node"}',
        (found) => (found.length > 0 ? found : undefined),
        30_000,
        'node_exporter_build_info{location="home"} federated from home',
      );
      assert.equal(series[0]?.labels.location, 'home');
      assert.equal(
        series[0]?.labels.instance,
        `127.0.0.1:${ports.node}`,
        'honor_labels kept the home instance',
      );
      await waitUp('federate', 1, 10_000);
    }));

  it('the http_sd job scrapes the site federation does not cover, and stores no home series twice', () =>
    step(async () => {
      const server = vpsServer();
      await waitUp('natprox', 1, 20_000);
      const series = await server.waitFor(
        'node_exporter_build_info{job="natprox"}',
        (found) => (found.length > 0 ? found : undefined),
        10_000,
        'node_exporter_build_info scraped through the proxy',
      );
      assert.deepEqual(
        series.map((s) => [s.labels.instance, s.labels.location]),
        [[`${ATTIC}:${ports.node}`, 'attic']],
        'only attic, with the client label from /clients',
      );
      // raspberrypi's series come by federation only: one node_exporter_build_info, not two.
      const home = await server.query('node_exporter_build_info{location="home"}');
      assert.deepEqual(
        home.map((s) => s.labels.job),
        ['node'],
      );
      assert.deepEqual(await server.query(`up{instance=~"${NAME}:.*", job="natprox"}`), []);
    }));

  it('refuses scrapes of a port the client does not allow (403)', () =>
    step(async () => {
      assert.ok(ca);
      const status = await scrapeThroughTls(
        ports.proxy,
        ca.cert,
        `http://${NAME}:${vpsServer().port}/metrics`,
        `Basic ${Buffer.from(`prometheus:${scraperPassword}`).toString('base64')}`,
      );
      assert.equal(status, 403);
    }));

  it('every panel of both Grafana dashboards shows data, for "All" and for one chosen site', () =>
    step(async () => {
      const server = vpsServer();
      // Two VPS scrape intervals at least, so rate() over the window has two samples.
      const window = `${(INTERVAL_MS * 4) / 1000}s`;
      await waitUp('natprox-proxy', 1, 20_000);
      const choices: Array<[string, Record<string, string>]> = [
        ['All', {}],
        ['location=home', { location: 'home', client: NAME }],
      ];
      for (const [choice, values] of choices) {
        for (const file of DASHBOARDS) {
          const panels = new Map<string, string[]>();
          for (const { panel, expr } of dashboardQueries(file, window, values)) {
            panels.set(panel, [...(panels.get(panel) ?? []), expr]);
          }
          for (const [panel, exprs] of panels) {
            // A panel shows data when any of its queries returns a series.
            await server.waitFor(
              exprs.map((expr) => `(${expr})`).join(' or '),
              (series) => (series.length > 0 ? true : undefined),
              20_000,
              `${file.split('/').pop()} / ${panel} (${choice}): ${exprs.join(' | ')}`,
            );
          }
        }
      }
    }));

  it('up goes 0 at the next scrape when the client stops, and back to 1 within two intervals when it starts', () =>
    step(async () => {
      const stoppedAt = await client.stop('SIGTERM');
      await waitUp('federate', 0, 2 * INTERVAL_MS + 5000);
      const downAfterMs = await assertDownAtNextScrape(stoppedAt, 'the client stopped');

      const startedAt = Date.now();
      client = startClient();
      await client.waitForLine(/tunnel connected/, 10_000);
      const connectedAfterMs = Date.now() - startedAt;
      const upAfterMs = await assertUpWithinTwoIntervals(stoppedAt, startedAt, 'the client');
      console.log(
        `measured (scrape interval ${seconds(INTERVAL_MS)}): client stopped → first scrape with up 0 after ${seconds(downAfterMs)}; ` +
          `client started → tunnel connected after ${seconds(connectedAfterMs)}, first scrape with up 1 after ${seconds(upAfterMs)}`,
      );
    }));

  it("the dashboard's reconnect panel shows the client's reconnect", () =>
    step(async () => {
      const [reconnects] = dashboardQueries(DASHBOARDS[0] as string, '1m', {
        client: NAME,
      }).filter(({ panel }) => panel.startsWith('Reconnects per client'));
      assert.ok(reconnects, 'natprox.json has a reconnect panel');
      await vpsServer().waitFor(
        reconnects.expr,
        (series) => ((series[0]?.samples[0]?.value ?? 0) >= 1 ? true : undefined),
        4 * INTERVAL_MS + 5000,
        `${reconnects.expr} >= 1 after the client restarted`,
      );
    }));

  it('up goes 0 at the next scrape when the proxy restarts, and back to 1 within two intervals', () =>
    step(async () => {
      // A restart as systemctl does it: stop, then start at once. Timed to end just before a
      // scheduled scrape, so that scrape finds the proxy down or the client not yet back (its
      // first retry comes 0.35 s or more after the disconnect) and up must be 0 — without
      // keeping the proxy down for long, which would leave the client deep in its backoff.
      const nextScrapeAtMs = await sleepUntilBeforeNextScrape(PROXY_RESTART_LEAD_MS);
      const stoppedAt = await proxy.stop('SIGTERM');
      const clientLines = client.lines().length;
      const startedAt = Date.now();
      proxy = startProxy();
      await proxy.waitForLine(/proxy listening/, 10_000);
      const listeningAt = Date.now();
      await client.waitForLine(/tunnel connected/, 10_000, clientLines);
      const reconnectedAfterMs = Date.now() - listeningAt;
      const downAfterMs = await assertDownAtNextScrape(stoppedAt, 'the proxy stopped');
      const upAfterMs = await assertUpWithinTwoIntervals(stoppedAt, listeningAt, 'the proxy');
      console.log(
        `measured (scrape interval ${seconds(INTERVAL_MS)}): proxy stopped ${nextScrapeAtMs - stoppedAt} ms before a scrape → first scrape with up 0 after ${seconds(downAfterMs)}; ` +
          `proxy listening again ${seconds(listeningAt - startedAt)} after its start → client reconnected after ${seconds(reconnectedAfterMs)}, ` +
          `first scrape with up 1 after ${seconds(upAfterMs)}`,
      );

      // Fresh federated data flows again, and the http_sd job recovers too.
      await vpsServer().waitFor(
        'timestamp(node_exporter_build_info{location="home", job="node"})',
        (series) => ((series[0]?.samples[0]?.value ?? 0) * 1000 >= listeningAt ? true : undefined),
        2 * INTERVAL_MS + 5000,
        'federated samples scraped after the proxy restart',
      );
      await waitUp('natprox', 1, 2 * INTERVAL_MS + 5000);
    }));
});

/** An absolute-form GET through the TLS proxy, as Prometheus sends it; resolves with the status. */
function scrapeThroughTls(
  proxyPort: number,
  ca: Buffer,
  targetUrl: string,
  proxyAuthorization: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: proxyPort,
      servername: 'localhost',
      ca,
      method: 'GET',
      path: targetUrl,
      headers: { host: new URL(targetUrl).host, 'proxy-authorization': proxyAuthorization },
      agent: false,
      timeout: 5000,
    });
    req.once('timeout', () => req.destroy(new Error(`no answer for ${targetUrl} within 5 s`)));
    req.once('error', reject);
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.end();
  });
}
