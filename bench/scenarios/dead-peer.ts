/**
 * dead peer: a client process frozen with SIGSTOP (its socket stays open, it just stops
 * answering); the time until the proxy drops it from /clients. The full run uses the default
 * heartbeat (4 s); the quick run uses 1 s and scales the goal by the same factor.
 */
import { sleep } from '../lib/children.js';
import { startTarget } from '../lib/helpers.js';
import { listedNames, startClient, startProxy, waitListed } from '../lib/natprox.js';
import { summarize } from '../lib/load-types.js';
import { row } from '../lib/report.js';
import type { Context, ScenarioResult } from '../lib/context.js';

const SCENARIO = 'dead peer';
const DEFAULT_HEARTBEAT_S = 4;
const GOAL_S = 15;

export async function deadPeer(ctx: Context): Promise<ScenarioResult> {
  const heartbeatS = ctx.quick ? 1 : DEFAULT_HEARTBEAT_S;
  const runs = ctx.quick ? 1 : 2;
  const goalS = (GOAL_S * heartbeatS) / DEFAULT_HEARTBEAT_S;
  const target = await startTarget();
  const proxy = await startProxy({
    cpuProfDir: ctx.cpuProfDir,
    ...(heartbeatS === DEFAULT_HEARTBEAT_S ? {} : { heartbeatInterval: `${heartbeatS}s` }),
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const name = `frozen-${i}`;
      const victim = startClient({ proxyUrl: proxy.url, names: [name], allowPorts: [target.port] });
      try {
        await waitListed(proxy.port, [name], 15_000);
        const stoppedAt = performance.now();
        victim.child.kill('SIGSTOP');
        const limitMs = goalS * 1000 * 3;
        let droppedMs = Number.POSITIVE_INFINITY;
        while (performance.now() - stoppedAt < limitMs) {
          if (!(await listedNames(proxy.port)).has(name)) {
            droppedMs = performance.now() - stoppedAt;
            break;
          }
          await sleep(50);
        }
        times.push(droppedMs / 1000);
      } finally {
        victim.child.kill('SIGCONT');
        victim.child.kill('SIGKILL');
        await victim.exited;
      }
    }
    const summary = summarize(times);
    return {
      rows: [
        row({
          scenario: SCENARIO,
          metric: `dropped from /clients after SIGSTOP, worst of ${runs}`,
          unit: 's',
          natprox: summary.maxMs,
          goal: {
            text:
              heartbeatS === DEFAULT_HEARTBEAT_S
                ? `<= ${GOAL_S} s`
                : `<= ${goalS} s (${GOAL_S} s x ${heartbeatS}/${DEFAULT_HEARTBEAT_S} s heartbeat)`,
            value: summary.maxMs,
            unit: 's',
            max: goalS,
          },
          note: `heartbeat interval ${heartbeatS} s`,
        }),
      ],
      details: { heartbeatS, times },
    };
  } finally {
    await Promise.all([proxy.stop(6000), target.stop()]);
  }
}
