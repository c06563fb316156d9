import type { Logger } from 'pino';
import type { Reclaimed } from '../util/idle-reclaim.js';

const MiB = 1024 * 1024;

/** A debug line per idle collection: what it gave back and what it paused for. */
export function logReclaimed(log: Logger, reclaimed: Reclaimed): void {
  log.debug(
    {
      rssBeforeMiB: Math.round((reclaimed.beforeBytes / MiB) * 10) / 10,
      rssAfterMiB: Math.round((reclaimed.afterBytes / MiB) * 10) / 10,
      pauseMs: Math.round(reclaimed.pauseMs * 10) / 10,
      ...(reclaimed.kind === 'young' ? { youngGeneration: true } : {}),
    },
    'idle: memory given back',
  );
}
