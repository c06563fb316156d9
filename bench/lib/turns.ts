/** Measuring several routes in turns, so that the machine's noise falls on all of them. */
import type { Context } from './context.js';
import type { LoadJob, LoadResult, MeasuredRoute } from './load-types.js';
import { cpuMeter } from './proc-stats.js';

/** What the turns gathered for one route. */
export interface RouteRuns {
  runs: LoadResult[];
  /** CPU milliseconds per process group, added up over the route's runs. */
  cpuMs: Record<string, number>;
}

/**
 * Runs `jobOf(route)` for each route in turn, `rounds` times, metering each route's process
 * groups while its own job runs; `check` sees every run.
 */
export async function takeTurns(
  ctx: Context,
  routes: readonly MeasuredRoute[],
  rounds: number,
  jobOf: (route: MeasuredRoute) => LoadJob,
  check: (key: string, result: LoadResult) => void,
): Promise<Map<string, RouteRuns>> {
  const gathered = new Map<string, RouteRuns>(
    routes.map((r) => [
      r.key,
      { runs: [], cpuMs: Object.fromEntries(Object.keys(r.cpu).map((group) => [group, 0])) },
    ]),
  );
  for (let round = 0; round < rounds; round += 1) {
    for (const route of routes) {
      const meters = Object.entries(route.cpu).map(
        ([group, pids]) => [group, cpuMeter(pids)] as const,
      );
      const result = await ctx.driver.run(jobOf(route));
      const mine = gathered.get(route.key);
      if (!mine) continue;
      for (const [group, meter] of meters)
        mine.cpuMs[group] = (mine.cpuMs[group] ?? 0) + meter.elapsedMs();
      mine.runs.push(result);
      check(route.key, result);
    }
  }
  return gathered;
}
