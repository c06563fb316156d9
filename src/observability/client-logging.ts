import type { Logger } from 'pino';
import type { ClientEvents } from '../client/client-events.js';

/** Turns client events into log lines. */
export function logClientEvents(events: ClientEvents, log: Logger, proxy: string): void {
  events.on('state', (state) => {
    switch (state.state) {
      case 'connecting':
        log.debug({ proxy, attempt: state.attempt }, 'connecting');
        break;
      case 'connected':
        log.info({ proxy }, 'tunnel connected');
        break;
      case 'reconnecting':
        log.warn(
          { proxy, reason: state.lastError, retryInMs: state.delayMs, attempt: state.attempt },
          'tunnel down, reconnecting',
        );
        break;
      case 'closed':
        log.info({ proxy }, 'tunnel closed');
        break;
    }
  });
  events.on('scrapeServed', (info) => {
    const fields = {
      target: `${info.name}:${info.port}`,
      path: info.path,
      outcome: info.outcome,
      status: info.status,
      durationMs: Math.round(info.durationMs * 10) / 10,
      bytes: info.bytes,
      ...(info.reason ? { reason: info.reason } : {}),
    };
    if (info.outcome === 'ok') log.debug(fields, 'scrape served');
    else log.warn(fields, 'scrape failed');
  });
}
