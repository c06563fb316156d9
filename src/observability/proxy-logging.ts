import type { Logger } from 'pino';
import type { ProxyEvents } from '../proxy/proxy-events.js';

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
    const fields = {
      target: `${info.name}:${info.port}`,
      outcome: info.outcome,
      status: info.status,
      durationMs: Math.round(info.durationMs),
      bytes: info.bytes,
      ...(info.reason ? { reason: info.reason } : {}),
    };
    if (info.outcome === 'ok') log.debug(fields, 'connect tunnel closed');
    else log.info(fields, 'connect failed');
  });
  events.on('scrapeFinished', (info) => {
    const fields = {
      target: `${info.name}:${info.port}`,
      path: info.path,
      outcome: info.outcome,
      status: info.status,
      durationMs: Math.round(info.durationMs * 10) / 10,
      bytes: info.bytes,
      ...(info.reason ? { reason: info.reason } : {}),
    };
    if (info.outcome === 'ok') log.debug(fields, 'scrape');
    else log.info(fields, 'scrape failed');
  });
}
