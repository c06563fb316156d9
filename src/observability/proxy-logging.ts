import type { Logger } from 'pino';
import type { ProxyEvents } from '../proxy/proxy-events.js';
import { scrapeLogFields } from './scrape-log-fields.js';

/** Turns proxy events into log lines: one line per event. */
export function logProxyEvents(events: ProxyEvents, log: Logger): void {
  events.on('listening', ({ address }) => log.info({ address }, 'proxy listening'));
  events.on('tunnelConnected', (session) =>
    log.info(
      {
        session: session.id,
        names: session.registration.names,
        remote: session.remoteAddress,
        transport: session.transport,
        clientVersion: session.registration.version,
      },
      'client connected',
    ),
  );
  events.on('tunnelDisconnected', (session, reason) =>
    log.info(
      { session: session.id, names: session.registration.names, reason },
      'client disconnected',
    ),
  );
  events.on('tunnelRejected', (info) => log.warn(info, 'client rejected'));
  events.on('connectFinished', (info) => {
    const fields = scrapeLogFields(info);
    if (info.outcome === 'ok') log.debug(fields, 'connect tunnel closed');
    else log.info(fields, 'connect failed');
  });
  // Runs for every scrape: build the fields only when the line is written.
  events.on('scrapeFinished', (info) => {
    if (info.outcome !== 'ok') log.info(scrapeLogFields(info), 'scrape failed');
    else if (log.isLevelEnabled('debug')) log.debug(scrapeLogFields(info), 'scrape');
  });
}
