/**
 * natprox as real processes: `natprox proxy` and `natprox client` started from bin/natprox.js
 * (the built dist/), a target in this process, signals and kills sent from outside.
 * Heartbeat and backoff run on their defaults (ping every 4 s, dead after 2 missed).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import {
  deadPort,
  eventually,
  getOrigin,
  metricValue,
  scrapeThrough,
  spawnNatprox,
  startTarget,
  within,
  type NatproxProcess,
  type ScrapeResult,
} from './helpers/loopback.js';
import { records, type LogRecord, count } from './helpers/log-records.js';

/** Waits until the process has logged `msg` at least `n` times; returns the n-th record. */
async function waitForRecord(
  proc: NatproxProcess,
  msg: string,
  n: number,
  timeoutMs: number,
): Promise<LogRecord> {
  await eventually(() => count(proc, msg) >= n, timeoutMs, `log line #${n} "${msg}"`).catch(
    (err: Error) => {
      throw new Error(`${err.message}; output:\n${proc.output()}`);
    },
  );
  return records(proc).filter((record) => record.msg === msg)[n - 1] as LogRecord;
}

/** Bound on a process start (generous: several node processes start at once on few CPUs). */
const STARTUP_MS = 20_000;

function teardownOf(t: TestContext): (fn: () => unknown) => void {
  return (fn) => t.after(fn);
}

async function startProxyProcess(
  t: TestContext,
  extra: string[] = [],
  listen = '127.0.0.1:0',
): Promise<{ proc: NatproxProcess; port: number }> {
  const proc = spawnNatprox(['proxy', '--listen', listen, ...extra], teardownOf(t));
  const record = await waitForRecord(proc, 'proxy listening', 1, STARTUP_MS);
  const port = Number(/:(\d+)$/.exec(String(record.address))?.[1]);
  assert.ok(port > 0, `no port in ${String(record.address)}`);
  return { proc, port };
}

async function startClientProcess(
  t: TestContext,
  proxyPort: number,
  args: string[],
): Promise<NatproxProcess> {
  const proc = spawnNatprox(
    ['client', '--proxy-url', `http://127.0.0.1:${proxyPort}`, ...args],
    teardownOf(t),
  );
  await waitForRecord(proc, 'tunnel connected', 1, STARTUP_MS);
  return proc;
}

interface SlowTarget {
  port: number;
  /** Resolves when the target has received its n-th request (1-based). */
  received(n: number): Promise<void>;
}

/** A target that answers `metric{path="..."} 1` after `?delay=MS`, counting requests. */
async function startSlowTarget(t: TestContext): Promise<SlowTarget> {
  let seen = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const handler: http.RequestListener = (req, res) => {
    seen += 1;
    for (const waiter of waiters.filter((w) => w.n <= seen)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    const url = new URL(req.url ?? '/', 'http://target');
    const delayMs = Number(url.searchParams.get('delay') ?? 0);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`metric{path="${url.pathname}"} 1\n`);
    }, delayMs);
  };
  const { port } = await startTarget(handler, teardownOf(t));
  return {
    port,
    received: (n) =>
      n <= seen
        ? Promise.resolve()
        : within(
            new Promise<void>((resolve) => waiters.push({ n, resolve })),
            10_000,
            `request #${n} at the target`,
          ),
  };
}

/** A forward-proxy scrape as Prometheus sends it, bounded to 10 s. */
function scrape(proxyPort: number, url: string): Promise<ScrapeResult> {
  return within(scrapeThrough(proxyPort, url), 10_000, `scrape of ${url}`);
}

/** An origin-form GET (`GET /path`), as an operator or Prometheus http_sd sends it. */
function get(port: number, path: string): Promise<ScrapeResult> {
  return within(getOrigin(port, path), 5000, `GET ${path} on port ${port}`);
}

interface SdGroup {
  targets: string[];
  labels: Record<string, string>;
}

async function clients(proxyPort: number): Promise<SdGroup[]> {
  const result = await get(proxyPort, '/clients');
  assert.equal(result.status, 200, result.body);
  return JSON.parse(result.body) as SdGroup[];
}

/** Listed in /clients as connected (a departed name stays listed as not connected). */
async function listed(proxyPort: number, name: string): Promise<boolean> {
  return (await clients(proxyPort)).some(
    (group) =>
      group.labels.__meta_natprox_name === name && group.labels.__meta_natprox_connected === 'true',
  );
}

/** A new connection to a draining proxy: refused, or answered 503. Returns what happened. */
async function newConnectionOutcome(port: number, url: string): Promise<string> {
  try {
    const result = await scrape(port, url);
    return `HTTP ${result.status}`;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function secondsSince(startMs: number): string {
  return ((Date.now() - startMs) / 1000).toFixed(2);
}

describe('natprox processes', { concurrency: true, timeout: 90_000 }, () => {
  describe('graceful shutdown', { concurrency: 1 }, () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`proxy on ${signal}: the in-flight scrape completes, new connections are refused, exit 0 within the grace`, async (t) => {
        const graceMs = 5000;
        const target = await startSlowTarget(t);
        const proxy = await startProxyProcess(t, ['--shutdown-grace', `${graceMs}ms`]);
        await startClientProcess(t, proxy.port, ['--name', 'home', '--allow', `${target.port}`]);

        const inFlight = scrape(proxy.port, `http://home:${target.port}/slow?delay=500`);
        await target.received(1);
        const signalledAt = Date.now();
        proxy.proc.child.kill(signal);
        const draining = await waitForRecord(
          proxy.proc,
          'shutting down: no new connections, finishing in-flight scrapes',
          1,
          2000,
        );
        assert.equal(draining.signal, signal);
        assert.equal(draining.inFlight, 1, 'the proxy counts the scrape as in flight');

        const late = await newConnectionOutcome(proxy.port, `http://home:${target.port}/late`);
        assert.ok(
          late === 'ECONNREFUSED' || late === 'ECONNRESET' || late === 'HTTP 503',
          `a new scrape while draining got ${late}; expected refused or 503`,
        );

        const result = await within(inFlight, graceMs, 'the in-flight scrape');
        assert.equal(result.status, 200, result.body);
        assert.equal(result.body, 'metric{path="/slow"} 1\n');

        const code = await within(proxy.proc.exited, graceMs, `proxy exit after ${signal}`);
        const exitMs = Date.now() - signalledAt;
        console.log(`proxy ${signal}: exit code ${code} after ${exitMs} ms`);
        assert.equal(code, 0, proxy.proc.output());
        assert.ok(exitMs < graceMs, `exit took ${exitMs} ms, grace is ${graceMs} ms`);
        assert.equal(count(proxy.proc, 'stopped'), 1, 'the proxy logs "stopped"');
      });
    }

    /** A client with a scrape in flight (the target answers after 500 ms) gets SIGTERM. */
    async function sigtermClientMidScrape(t: TestContext) {
      const graceMs = 5000;
      const target = await startSlowTarget(t);
      const proxy = await startProxyProcess(t);
      const client = await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
        '--shutdown-grace',
        `${graceMs}ms`,
      ]);
      const inFlight = scrape(proxy.port, `http://home:${target.port}/slow?delay=500`);
      await target.received(1);
      const signalledAt = Date.now();
      client.child.kill('SIGTERM');
      const [result, code] = await Promise.all([
        within(inFlight, graceMs, 'the in-flight scrape'),
        within(client.exited, graceMs, 'client exit after SIGTERM'),
      ]);
      const exitMs = Date.now() - signalledAt;
      console.log(`client SIGTERM: exit code ${code} after ${exitMs} ms; scrape ${result.status}`);
      return { graceMs, target, proxy, client, result, code, exitMs };
    }

    it('client on SIGTERM: exits 0 within the grace; the proxy drops its names at once', async (t) => {
      const { graceMs, target, proxy, client, code, exitMs } = await sigtermClientMidScrape(t);
      assert.equal(code, 0, client.output());
      assert.ok(exitMs < graceMs, `exit took ${exitMs} ms, grace is ${graceMs} ms`);
      assert.equal(count(client, 'stopped'), 1, 'the client logs "stopped"');
      // Gone from the proxy: no longer listed, and a scrape of its name fails at once.
      await eventually(async () => !(await listed(proxy.port, 'home')), 2000, 'home unlisted');
      const after = await scrape(proxy.port, `http://home:${target.port}/after`);
      assert.equal(after.status, 503);
      assert.equal(after.headers['x-natprox-error'], 'NATPROX_NO_CLIENT');
    });

    it('client on SIGTERM: the in-flight scrape completes with 200', async (t) => {
      const { client, result } = await sigtermClientMidScrape(t);
      assert.equal(result.status, 200, `${result.body}client log:\n${client.output()}`);
      assert.equal(result.body, 'metric{path="/slow"} 1\n');
    });
  });

  describe('dead peer (default heartbeat: ping every 4 s, dead after 2 missed)', () => {
    it('a stopped client is dropped from /clients within 15 s and comes back after SIGCONT', async (t) => {
      const target = await startSlowTarget(t);
      const proxy = await startProxyProcess(t);
      const client = await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
      ]);
      assert.ok(await listed(proxy.port, 'home'));

      const stoppedAt = Date.now();
      client.child.kill('SIGSTOP');
      try {
        await eventually(
          async () => !(await listed(proxy.port, 'home')),
          15_000,
          'the stopped client to leave /clients',
        );
        const detectedS = secondsSince(stoppedAt);
        console.log(`proxy dropped the SIGSTOPped client after ${detectedS} s`);
        const disconnected = await waitForRecord(proxy.proc, 'client disconnected', 1, 1000);
        assert.match(String(disconnected.reason), /heartbeat/);
      } finally {
        client.child.kill('SIGCONT');
      }

      const resumedAt = Date.now();
      await eventually(
        () => listed(proxy.port, 'home'),
        10_000,
        'the resumed client to be listed again',
      );
      console.log(`the resumed client was listed again after ${secondsSince(resumedAt)} s`);
      // The proxy lists the client as soon as it has sent 101; the client logs its side a
      // moment later.
      await waitForRecord(client, 'tunnel connected', 2, 5000);
      assert.equal(count(client, 'tunnel connected'), 2, 'the client reconnected once');
      const result = await scrape(proxy.port, `http://home:${target.port}/again`);
      assert.equal(result.status, 200, result.body);
    });

    it('a proxy stopped for 13 s: the client sees the tunnel go down, reconnects after SIGCONT', async (t) => {
      const target = await startSlowTarget(t);
      const proxy = await startProxyProcess(t);
      const client = await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
      ]);

      const stoppedAt = Date.now();
      proxy.proc.child.kill('SIGSTOP');
      let down: LogRecord;
      try {
        // The client notices on its own while the proxy is still stopped (kept for >= 13 s).
        down = await waitForRecord(client, 'tunnel down, reconnecting', 1, 15_000);
        const detectedS = ((down.time - stoppedAt) / 1000).toFixed(2);
        console.log(`client saw the SIGSTOPped proxy as dead after ${detectedS} s`);
        const left = 13_000 - (Date.now() - stoppedAt);
        if (left > 0) await sleep(left);
      } finally {
        proxy.proc.child.kill('SIGCONT');
      }
      assert.match(String(down.reason), /heartbeat/);
      assert.ok(down.time - stoppedAt <= 15_000, 'the client notices within 15 s');

      const resumedAt = Date.now();
      await waitForRecord(client, 'tunnel connected', 2, 12_000);
      await eventually(() => listed(proxy.port, 'home'), 2000, 'home listed again');
      console.log(`client reconnected ${secondsSince(resumedAt)} s after SIGCONT of the proxy`);
      assert.equal((await clients(proxy.port)).length, 1, 'one session, the old one is gone');
      const result = await scrape(proxy.port, `http://home:${target.port}/again`);
      assert.equal(result.status, 200, result.body);
    });
  });

  describe('restarts', () => {
    it('kill -9 proxy, new proxy on the same port: the client reconnects within 10 s; kill -9 client, a new one serves at once', async (t) => {
      const target = await startSlowTarget(t);
      const first = await startProxyProcess(t);
      const port = first.port;
      const client = await startClientProcess(t, port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
      ]);
      assert.equal((await scrape(port, `http://home:${target.port}/one`)).status, 200);

      first.proc.child.kill('SIGKILL');
      await within(first.proc.exited, 5000, 'the killed proxy to exit');
      // Let the client fail a couple of attempts, so its backoff has grown a little.
      await waitForRecord(client, 'tunnel down, reconnecting', 2, 10_000);

      const second = await startProxyProcess(t, [], `127.0.0.1:${port}`);
      const restartedAt = Date.now();
      await waitForRecord(client, 'tunnel connected', 2, 10_000);
      const reconnectMs = Date.now() - restartedAt;
      console.log(`client reconnected ${reconnectMs} ms after the proxy restarted`);
      assert.ok(reconnectMs <= 10_000);
      const viaSecond = await scrape(second.port, `http://home:${target.port}/two`);
      assert.equal(viaSecond.status, 200, viaSecond.body);
      assert.equal(viaSecond.body, 'metric{path="/two"} 1\n');

      client.child.kill('SIGKILL');
      await within(client.exited, 5000, 'the killed client to exit');
      const replacement = await startClientProcess(t, port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
      ]);
      // No retry, no waiting: the very first scrape goes through the new client.
      const viaNew = await scrape(port, `http://home:${target.port}/three`);
      assert.equal(viaNew.status, 200, viaNew.body);
      assert.equal(viaNew.body, 'metric{path="/three"} 1\n');
      await waitForRecord(replacement, 'scrape served', 1, 2000);
    });
  });

  describe('observability', { concurrency: 1 }, () => {
    it('client --metrics-listen serves natprox client metrics that count served scrapes', async (t) => {
      const target = await startSlowTarget(t);
      const proxy = await startProxyProcess(t);
      const metricsPort = await deadPort();
      await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
      ]);
      const metrics = async (): Promise<string> => {
        const result: ScrapeResult = await get(metricsPort, '/metrics');
        assert.equal(result.status, 200);
        assert.match(String(result.headers['content-type']), /^text\/plain/);
        return result.body;
      };

      const before = await metrics();
      assert.equal(metricValue(before, 'natprox_client_tunnel_up'), 1);
      assert.equal(metricValue(before, 'natprox_client_tunnel_connects_total'), 1);
      assert.equal(metricValue(before, 'natprox_client_tunnel_failures_total'), 0);
      assert.equal(
        metricValue(before, 'natprox_client_scrapes_total', { outcome: 'ok' }),
        undefined,
      );
      assert.ok(metricValue(before, 'natprox_client_process_cpu_user_seconds_total') !== undefined);

      for (let i = 0; i < 3; i += 1) {
        const result = await scrape(proxy.port, `http://home:${target.port}/m${i}`);
        assert.equal(result.status, 200);
      }
      const forbidden = await scrape(proxy.port, `http://home:${target.port + 1}/x`);
      assert.equal(forbidden.status, 403);

      const after = await metrics();
      assert.equal(metricValue(after, 'natprox_client_scrapes_total', { outcome: 'ok' }), 3);
      assert.equal(metricValue(after, 'natprox_client_scrapes_total', { outcome: 'forbidden' }), 1);
      assert.equal(metricValue(after, 'natprox_client_scrape_duration_seconds_count'), 4);
      assert.equal(
        metricValue(after, 'natprox_client_relayed_bytes_total'),
        3 * Buffer.byteLength('metric{path="/m0"} 1\n'),
      );
      assert.equal((await get(metricsPort, '/other')).status, 404);
    });

    it('/clients lists names, NAME:PORT per allowed port, --label and __meta_natprox_* labels', async (t) => {
      const target = await startSlowTarget(t);
      const otherPort = await deadPort();
      const proxy = await startProxyProcess(t);
      await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--name',
        'attic',
        '--allow',
        `${target.port}`,
        '--allow',
        `127.0.0.1:${otherPort}`,
        '--label',
        'location=home',
        '--label',
        'site=berlin',
      ]);

      const groups = await clients(proxy.port);
      const ports = [target.port, otherPort].sort((a, b) => a - b);
      assert.deepEqual(
        groups.map((group) => group.labels.__meta_natprox_name),
        ['attic', 'home'],
      );
      for (const group of groups) {
        const name = group.labels.__meta_natprox_name as string;
        assert.deepEqual(
          group.targets,
          ports.map((p) => `${name}:${p}`),
        );
        const { __meta_natprox_remote_address: remote, ...labels } = group.labels;
        assert.match(String(remote), /^127\.0\.0\.1:\d+$/);
        assert.deepEqual(labels, {
          location: 'home',
          site: 'berlin',
          __meta_natprox_name: name,
          __meta_natprox_transport: 'native',
          __meta_natprox_connected: 'true',
        });
      }
    });

    it('/clients: a client killed with SIGKILL is listed as not connected within 1 s', async (t) => {
      const target = await startSlowTarget(t);
      const proxy = await startProxyProcess(t);
      const client = await startClientProcess(t, proxy.port, [
        '--name',
        'home',
        '--allow',
        `${target.port}`,
      ]);
      assert.ok(await listed(proxy.port, 'home'));
      client.child.kill('SIGKILL');
      const killedAt = Date.now();
      // Wait up to 15 s to measure and print the real time, then hold it to 1 s.
      await eventually(
        async () => !(await listed(proxy.port, 'home')),
        15_000,
        'the killed client to leave /clients',
      );
      const goneMs = Date.now() - killedAt;
      console.log(`SIGKILLed client left /clients after ${goneMs} ms`);
      const disconnected = await waitForRecord(proxy.proc, 'client disconnected', 1, 1000);
      assert.ok(
        goneMs <= 1000,
        `gone after ${goneMs} ms (reason: ${String(disconnected.reason)}), expected <= 1000 ms`,
      );
    });
  });
});
