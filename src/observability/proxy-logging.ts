import type { Logger } from 'pino';
import type { ProxyEvents } from '../proxy/proxy-events.js';
import { RepeatAggregator } from './repeat-aggregator.js';
import { scrapeLogFields } from './scrape-log-fields.js';

/** How often repeated refusals are summed up in one line (see RepeatAggregator). */
export const REPEAT_INTERVAL_MS = 10_000;

/**
 * Refusals that anyone who reaches the proxy can cause by the thousand, without a token
 * or a connected client: logged as the first of each kind plus one count per interval.
 */
const REFUSALS: ReadonlySet<string> = new Set(['unauthorized', 'bad_request', 'no_client', 'busy']);

/** Turns proxy events into log lines: one line per event, repeated refusals summed up. */
export function logProxyEvents(
  events: ProxyEvents,
  log: Logger,
  repeatIntervalMs = REPEAT_INTERVAL_MS,
): void {
  const refused = new RepeatAggregator<Record<string, unknown>>((fields, repeated) => {
    if (repeated) log.info({ ...fields, ...repeated }, 'scrape failed, repeated');
    else log.info(fields, 'scrape failed');
  }, repeatIntervalMs);
  const refusedConnects = new RepeatAggregator<Record<string, unknown>>((fields, repeated) => {
    if (repeated) log.info({ ...fields, ...repeated }, 'connect failed, repeated');
    else log.info(fields, 'connect failed');
  }, repeatIntervalMs);
  const floods = new RepeatAggregator<Record<string, unknown>>((fields, repeated) => {
    if (repeated) log.warn({ ...fields, ...repeated }, 'connection cut off, repeated');
    else log.warn(fields, 'connection cut off');
  }, repeatIntervalMs);
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
  events.on('httpsConnectFinished', (info) => {
    if (REFUSALS.has(info.outcome)) {
      refusedConnects.record(`${info.outcome} ${info.reason ?? ''}`, () => scrapeLogFields(info));
      return;
    }
    const fields = scrapeLogFields(info);
    if (info.outcome === 'ok') log.debug(fields, 'connect tunnel closed');
    else log.info(fields, 'connect failed');
  });
  // Runs for every scrape: build the fields only when the line is written.
  events.on('scrapeFinished', (info) => {
    if (REFUSALS.has(info.outcome)) {
      refused.record(`${info.outcome} ${info.reason ?? ''}`, () => scrapeLogFields(info));
    } else if (info.outcome !== 'ok') log.info(scrapeLogFields(info), 'scrape failed');
    else if (log.isLevelEnabled('debug')) log.debug(scrapeLogFields(info), 'scrape');
  });
  events.on('connectionCutOff', (info) => floods.record(info.reason, () => ({ ...info })));
}
