/**
 * floods (issue 16): a good scraper's latency while other peers flood the proxy, against the
 * same scraper's on a quiet proxy. One keep-alive connection scrapes a 10 KiB target one at
 * a time (Proxy-Authorization of its own credential) for a fixed time, first quiet, then
 * during each flood, every flood from its own process (bench/flood-driver.ts), each peer
 * reopening its connection when the proxy closes it:
 *   - 4 connections pipelining `GET /-/healthy`
 *   - 4 connections pipelining scrapes without credentials (407 each)
 *   - 4 tunnels sending nothing but HTTP/2 WINDOW_UPDATE frames
 *   - 40 scrapes of 64 MiB by another scraper credential that never reads, to the client
 *     the good scraper scrapes too
 * The goal: the good scraper's p99 during each flood within 2x of its quiet p99.
 */
import { createHash } from 'node:crypto';
import { forkHelper, nextMessage, sleep, type Spawned } from '../lib/children.js';
import { failOnErrors, type Context, type ScenarioResult } from '../lib/context.js';
import { startTarget } from '../lib/helpers.js';
import type { LoadJob, LoadResult, Route } from '../lib/load-types.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { row, type Row } from '../lib/report.js';
import type { FloodSpec } from '../flood-driver.js';

const SCENARIO = 'floods';
const GOAL_RATIO = 2;
const NAME = 'quiet-target';
/** As many as the client's max_streams_per_client (64): without a per-scraper limit, all. */
const NON_READING = 64;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function startFloodDriver(): Promise<Spawned> {
  const spawned = forkHelper('flood-driver.ts');
  await nextMessage(
    spawned,
    (m): m is { type: 'ready' } => (m as { type?: string }).type === 'ready',
    20_000,
    'flood driver start',
  );
  return spawned;
}

async function ask<T extends object>(
  driver: Spawned,
  message: object,
  answer: string,
): Promise<T & { type: string }> {
  const reply = nextMessage(
    driver,
    (m): m is T & { type: string } => (m as { type?: string }).type === answer,
    20_000,
    `flood driver ${answer}`,
  );
  driver.child.send(message);
  return reply;
}

export async function floods(ctx: Context): Promise<ScenarioResult> {
  const phaseMs = ctx.quick ? 400 : 5000;
  const rampMs = ctx.quick ? 100 : 500;
  const fillMs = ctx.quick ? 1000 : 3000;
  const [target, driver, proxy] = await Promise.all([
    startTarget(),
    startFloodDriver(),
    startProxy({
      cpuProfDir: ctx.cpuProfDir,
      config: {
        scrapers: [
          { username: 'prometheus', password_sha256: sha256('prometheus-secret') },
          { username: 'greedy', password_sha256: sha256('greedy-secret') },
        ],
      },
    }),
  ]);
  const client = startClient({
    proxyUrl: proxy.url,
    names: [NAME],
    allowPorts: [target.port],
    cpuProfDir: ctx.cpuProfDir,
  });
  try {
    await waitListed(proxy.port, [NAME], 15_000, {
      authorization: basic('prometheus', 'prometheus-secret'),
    });
    const route: Route = {
      via: 'natprox',
      proxyPort: proxy.port,
      targetPort: target.port,
      names: [NAME],
      path: '/metrics',
      headers: { 'proxy-authorization': basic('prometheus', 'prometheus-secret') },
    };
    const job: LoadJob = {
      route,
      mode: 'closed',
      concurrency: 1,
      durationMs: phaseMs,
      warmup: 0,
      expectStatus: 200,
      timeoutMs: 10_000,
    };
    await ctx.driver.run({ ...job, durationMs: undefined, count: ctx.quick ? 200 : 3000 });
    const quiet = await ctx.driver.run(job);
    failOnErrors(ctx, 'floods: quiet', quiet);

    const targetUrl = `http://${NAME}:${target.port}/metrics`;
    const scenarios: Array<{ label: string; spec: FloodSpec }> = [
      {
        label: '4 connections pipelining /-/healthy',
        spec: { kind: 'pipelined-healthy', port: proxy.port, connections: 4 },
      },
      {
        label: '4 connections pipelining scrapes without credentials (407)',
        spec: { kind: 'unauthenticated', port: proxy.port, connections: 4, targetUrl },
      },
      {
        label: '4 tunnels flooding WINDOW_UPDATE frames',
        spec: { kind: 'window-update', port: proxy.port, connections: 4 },
      },
      {
        label: `${NON_READING} non-reading 16 MiB scrapes, another credential, same client`,
        spec: {
          kind: 'non-reading',
          port: proxy.port,
          scrapes: NON_READING,
          targetUrl: `http://${NAME}:${target.port}/bytes?n=${16 * 1024 * 1024}`,
          proxyAuthorization: basic('greedy', 'greedy-secret'),
        },
      },
    ];
    const measured: Array<{
      label: string;
      kind: FloodSpec['kind'];
      during: LoadResult;
      stats: { connections: number; closedByProxy: number };
    }> = [];
    for (const { label, spec } of scenarios) {
      await ask(driver, { type: 'start', flood: spec }, 'started');
      let during: LoadResult;
      let stats: { connections: number; closedByProxy: number };
      try {
        // The non-reading scrapes first fill every buffer on their way (4 MiB of stream window,
        // 1 MiB in the proxy, the sockets'): a burst like as many large scrapes starting at
        // once. What they do to others afterwards, by holding their streams, is measured.
        await sleep(spec.kind === 'non-reading' ? fillMs : rampMs);
        during = await ctx.driver.run(job);
      } finally {
        stats = await ask<{ connections: number; closedByProxy: number }>(
          driver,
          { type: 'stop' },
          'stopped',
        );
      }
      failOnErrors(ctx, `floods: ${spec.kind}`, during);
      measured.push({ label, kind: spec.kind, during, stats });
      // Let the proxy finish with the closed floods before the next one.
      await sleep(rampMs);
    }
    // Quiet again: the machine's own noise, before and after, makes the baseline.
    const quietAfter = await ctx.driver.run(job);
    failOnErrors(ctx, 'floods: quiet after', quietAfter);
    const quietP99 = (quiet.latency.p99Ms + quietAfter.latency.p99Ms) / 2;
    const rows: Row[] = [
      row({
        scenario: SCENARIO,
        metric: 'good scraper p99, quiet',
        unit: 'ms',
        natprox: quietP99,
        note: `mean of the runs before (p99 ${quiet.latency.p99Ms.toFixed(2)} ms, p50 ${quiet.latency.p50Ms.toFixed(2)} ms, ${quiet.ok} scrapes) and after the floods (p99 ${quietAfter.latency.p99Ms.toFixed(2)} ms, p50 ${quietAfter.latency.p50Ms.toFixed(2)} ms, ${quietAfter.ok} scrapes)`,
      }),
    ];
    const details: Record<string, unknown> = {
      quiet: quiet.latency,
      quietAfter: quietAfter.latency,
    };
    for (const { label, kind, during, stats } of measured) {
      rows.push(
        row({
          scenario: SCENARIO,
          metric: `good scraper p99, ${label}`,
          unit: 'ms',
          natprox: during.latency.p99Ms,
          goal: {
            text: `<= ${GOAL_RATIO}x quiet`,
            value: during.latency.p99Ms / quietP99,
            unit: 'x',
            max: GOAL_RATIO,
          },
          note: `p50 ${during.latency.p50Ms.toFixed(2)} ms over ${during.ok} scrapes; flood connections ${stats.connections}, closed by the proxy ${stats.closedByProxy}`,
        }),
      );
      details[kind] = { latency: during.latency, ...stats };
    }
    return { rows, details };
  } finally {
    await Promise.all([
      proxy.stop(3000),
      client.stop(3000),
      target.stop(),
      (async () => {
        driver.child.disconnect();
        await driver.stop(2000);
      })(),
    ]);
  }
}
