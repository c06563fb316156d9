import { Counter, Gauge, type Registry } from 'prom-client';
import { SCRAPE_OUTCOMES, type ProxyEvents } from '../proxy-events.js';
import {
  DEFAULT_DEPARTED_RETENTION,
  DepartedNames,
  type DepartedRetention,
} from '../departed-names.js';
import type { SessionRegistry } from '../session-registry.js';

/**
 * Per-client series on the proxy, labelled by the registered name, for dashboards that
 * show each client. The gauges follow the connected clients; a name's counters stay for
 * `retention` after no client serves it any more, then go, so the series count follows the
 * clients of the last hour, not every name ever seen.
 */
export function registerPerClientMetrics(
  registry: Registry,
  events: ProxyEvents,
  sessions: SessionRegistry,
  retention: DepartedRetention = DEFAULT_DEPARTED_RETENTION,
): void {
  const departed = new DepartedNames<undefined>(retention, (name) => {
    bytes.remove({ name });
    tunnelConnects.remove({ name });
    for (const outcome of SCRAPE_OUTCOMES) scrapes.remove({ name, outcome });
  });
  new Gauge({
    name: 'natprox_client_connected',
    help: 'One series per name a connected client serves (value 1), with its transport.',
    labelNames: ['name', 'transport'],
    registers: [registry],
    collect() {
      departed.prune();
      this.reset();
      for (const { name, session } of sessions.servedNames()) {
        this.set({ name, transport: session.transport }, 1);
      }
    },
  });
  new Gauge({
    name: 'natprox_client_label',
    help: 'One series (value 1) per label a connected client registered, e.g. label="location", value="home": join on name to filter dashboards by location.',
    labelNames: ['name', 'label', 'value'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { name, session } of sessions.servedNames()) {
        for (const [label, value] of Object.entries(session.registration.labels)) {
          this.set({ name, label, value }, 1);
        }
      }
    },
  });
  const scrapes = new Counter({
    name: 'natprox_client_scrapes_total',
    help: 'Scrapes relayed to a connected client, by name and how they ended.',
    labelNames: ['name', 'outcome'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'natprox_client_relayed_bytes_total',
    help: 'Bytes relayed from a connected client, by name.',
    labelNames: ['name'],
    registers: [registry],
  });
  const tunnelConnects = new Counter({
    name: 'natprox_client_connects_total',
    help: 'Tunnels opened by the client serving a name (reconnects show as increases).',
    labelNames: ['name'],
    registers: [registry],
  });

  const record = (info: { name: string; outcome: string; bytes: number; sessionId?: string }) => {
    // Only scrapes that reached a client: unknown names must not create series.
    if (!info.sessionId) return;
    scrapes.inc({ name: info.name, outcome: info.outcome });
    if (info.bytes > 0) bytes.inc({ name: info.name }, info.bytes);
  };
  events.on('scrapeFinished', record);
  events.on('httpsConnectFinished', record);
  events.on('tunnelConnected', (session) => {
    for (const name of session.registration.names) {
      departed.delete(name);
      tunnelConnects.inc({ name });
    }
  });
  events.on('tunnelDisconnected', (session) => {
    for (const name of session.registration.names) {
      if (!sessions.lookup(name)) departed.add(name, undefined);
    }
  });
}
