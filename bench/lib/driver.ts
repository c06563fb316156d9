/** The harness's handle on the load driver process (bench/load-driver.ts). */
import { forkHelper, nextMessage, type Spawned } from './children.js';
import type { LoadJob, LoadResult } from './load-types.js';

export interface LoadDriver {
  readonly pid: number;
  run(job: LoadJob): Promise<LoadResult>;
  close(): Promise<void>;
}

interface Answer {
  id: number;
  result?: LoadResult;
  error?: string;
}

export async function startDriver(): Promise<LoadDriver> {
  const spawned: Spawned = forkHelper('load-driver.ts');
  await nextMessage(
    spawned,
    (m): m is { type: 'ready' } => (m as { type?: string }).type === 'ready',
    20_000,
    'load driver start',
  );
  let nextId = 1;
  return {
    pid: spawned.pid,
    async run(job) {
      const id = nextId;
      nextId += 1;
      const bound =
        (job.durationMs ?? 120_000) + (job.warmup ?? 0) * job.timeoutMs + job.timeoutMs + 10_000;
      const answer = nextMessage(
        spawned,
        (m): m is Answer => (m as Answer).id === id,
        Math.min(bound, 600_000),
        `load job via ${job.route.via}`,
      );
      spawned.child.send({ id, job });
      const { result, error } = await answer;
      if (!result) throw new Error(`load driver failed: ${error}`);
      return result;
    },
    async close() {
      spawned.child.disconnect();
      await spawned.stop(2000);
    },
  };
}
