import type { Logger } from 'pino';
import type { ClientEvents } from '../client/client-events.js';
import type { TunnelName } from '../client/proxy-endpoint.js';
import { scrapeLogFields } from './scrape-log-fields.js';

/** Turns client events into log lines; each tunnel event names its proxy (and address). */
export function logClientEvents(events: ClientEvents, log: Logger): void {
  events.on('state', (state, tunnel) => {
    const proxy = tunnelFields(tunnel);
    switch (state.state) {
      case 'connecting':
        log.debug({ ...proxy, attempt: state.attempt }, 'connecting');
        break;
      case 'connected':
        log.info(proxy, 'tunnel connected');
        break;
      case 'reconnecting':
        log.warn(
          { ...proxy, reason: state.lastError, retryInMs: state.delayMs, attempt: state.attempt },
          'tunnel down, reconnecting',
        );
        break;
      case 'closed':
        log.info(proxy, 'tunnel closed');
        break;
    }
  });
  events.on('tunnelRemoved', (tunnel) => {
    log.info(tunnelFields(tunnel), 'tunnel removed: the address is no longer in DNS');
  });
  events.on('proxyResolved', (proxy, addresses) => {
    log.debug({ proxy, addresses }, 'proxy host resolved');
  });
  events.on('proxyResolveFailed', (proxy, reason) => {
    log.warn({ proxy, reason }, 'cannot resolve the proxy host; keeping the tunnels that are up');
  });
  // Runs for every scrape: build the fields only when the line is written.
  events.on('scrapeServed', (info) => {
    if (info.outcome !== 'ok') log.warn(scrapeLogFields(info), 'scrape failed');
    else if (log.isLevelEnabled('debug')) log.debug(scrapeLogFields(info), 'scrape served');
  });
}

function tunnelFields(tunnel: TunnelName): { proxy: string; address?: string } {
  return tunnel.address === undefined
    ? { proxy: tunnel.proxy }
    : { proxy: tunnel.proxy, address: tunnel.address };
}
