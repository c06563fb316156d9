/**
 * fail fast: how soon a scraper learns that a scrape cannot succeed.
 *   - 503 for a name no client serves (sequential, keep-alive; the direct baseline is the
 *     target's own 404, the smallest round trip there is);
 *   - 502 when the client process is SIGKILLed while the scrape waits for the target
 *     (the target holds the request): time from the kill to the scraper's 502;
 *   - the same kill after the response has started (headers and 1 KiB of body sent): time
 *     until the scraper sees the body cut off (a 502 is no longer possible).
 */
import { startTarget } from '../lib/helpers.js';
import { startClient, startProxy, waitListed } from '../lib/natprox.js';
import { scrapeThroughProxy } from '../lib/single-scrape.js';
import { summarize } from '../lib/load-types.js';
import { row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'fail fast';

export async function failFast(ctx: Context): Promise<ScenarioResult> {
  const unknownCount = ctx.quick ? 300 : 2000;
  const kills = ctx.quick ? 1 : 3;
  const target = await startTarget();
  const proxy = await startProxy({ cpuProfDir: ctx.cpuProfDir });
  const resident = startClient({
    proxyUrl: proxy.url,
    names: ['resident-1'],
    allowPorts: [target.port],
  });
  try {
    await waitListed(proxy.port, ['resident-1'], 15_000);
    const names = Array.from({ length: 100 }, (_, i) => `nobody-${i}`);
    const unknown = await ctx.driver.run({
      route: {
        via: 'natprox',
        proxyPort: proxy.port,
        targetPort: target.port,
        names,
        path: '/metrics',
      },
      mode: 'closed',
      concurrency: 1,
      count: unknownCount,
      warmup: 50,
      expectStatus: 503,
      timeoutMs: 10_000,
    });
    if (unknown.errors > 0) {
      ctx.fail(`fail fast: unknown name did not get 503: ${unknown.errorSamples[0]}`);
    }
    const smallest = await ctx.driver.run({
      route: { via: 'direct', targetPort: target.port, path: '/nothing' },
      mode: 'closed',
      concurrency: 1,
      count: unknownCount,
      warmup: 50,
      expectStatus: 404,
      timeoutMs: 10_000,
    });

    // Bounded: the scrape carries a deadline, so a kill natprox does not notice ends in a
    // 504 at the deadline (reported as a miss) rather than hanging the harness.
    const deadlineS = ctx.quick ? 3 : 15;
    const killed502: number[] = [];
    const killedMidBody: number[] = [];
    const statuses: string[] = [];
    let wrongStatus = 0;
    let truncatedAsComplete = 0;
    for (let i = 0; i < kills; i += 1) {
      for (const phase of ['hang', 'drip'] as const) {
        const name = `victim-${phase}-${i}`;
        const victim = startClient({
          proxyUrl: proxy.url,
          names: [name],
          allowPorts: [target.port],
        });
        try {
          await waitListed(proxy.port, [name], 15_000);
          const arrived = target.nextEvent(phase, 10_000);
          const scrape = scrapeThroughProxy(
            proxy.port,
            `${name}:${target.port}`,
            `/${phase}`,
            deadlineS,
          );
          await arrived;
          if (phase === 'drip') await scrape.headers;
          const killedAt = performance.now();
          victim.child.kill('SIGKILL');
          const ended = await scrape.ended;
          const ms = ended.at - killedAt;
          statuses.push(
            `${phase}: HTTP ${ended.status} ${ended.complete ? 'complete' : `cut off (${ended.error})`} after ${ms.toFixed(0)} ms`,
          );
          if (phase === 'hang') {
            killed502.push(ms);
            if (ended.status !== 502) wrongStatus += 1;
          } else {
            killedMidBody.push(ms);
            if (ended.complete) truncatedAsComplete += 1;
          }
        } finally {
          await victim.stop();
        }
      }
    }
    const k502 = summarize(killed502);
    const kBody = summarize(killedMidBody);
    const rows = [
      row({
        scenario: SCENARIO,
        metric: '503 unknown name, p50',
        unit: 'ms',
        natprox: unknown.latency.p50Ms,
        direct: smallest.latency.p50Ms,
      }),
      row({
        scenario: SCENARIO,
        metric: '503 unknown name, p99',
        unit: 'ms',
        natprox: unknown.latency.p99Ms,
        direct: smallest.latency.p99Ms,
        goal: { text: '<= 10 ms', value: unknown.latency.p99Ms, unit: 'ms', max: 10 },
        note: 'direct: the target answering 404',
      }),
      row({
        scenario: SCENARIO,
        metric: `502 after client SIGKILL, worst of ${kills}`,
        unit: 'ms',
        natprox: k502.maxMs,
        goal: {
          text: '<= 100 ms',
          value: wrongStatus > 0 ? Number.POSITIVE_INFINITY : k502.maxMs,
          unit: 'ms',
          max: 100,
        },
        note: `scrape deadline ${deadlineS} s; ${statuses.filter((s) => s.startsWith('hang')).join('; ')}`,
      }),
      row({
        scenario: SCENARIO,
        metric: `cut-off after SIGKILL mid-body, worst of ${kills}`,
        unit: 'ms',
        natprox: kBody.maxMs,
        goal: {
          text: '<= 100 ms, seen as cut off',
          value: truncatedAsComplete > 0 ? Number.POSITIVE_INFINITY : kBody.maxMs,
          unit: 'ms',
          max: 100,
        },
        note: `${truncatedAsComplete} of ${kills} truncated bodies ended as if complete; ${statuses.filter((s) => s.startsWith('drip')).join('; ')}`,
      }),
    ];
    return {
      rows,
      details: {
        unknown,
        smallest,
        killed502,
        killedMidBody,
        statuses,
        wrongStatus,
        truncatedAsComplete,
      },
    };
  } finally {
    await Promise.all([resident.stop(), proxy.stop(6000), target.stop()]);
  }
}
