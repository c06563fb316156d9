import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../util/process-metrics.js';
import { SCRAPE_OUTCOMES, type ProxyEvents } from '../proxy-events.js';
import type { SessionRegistry } from '../session-registry.js';
import { registerPerClientMetrics } from './per-client-metrics.js';

/** Turns proxy events into prom-client metrics on a registry of its own. */
export function createProxyMetrics(
  events: ProxyEvents,
  sessions: SessionRegistry,
  activeScrapes: () => number,
): Registry {
  const registry = new Registry();
  collectProcessMetrics(registry, 'natprox_proxy_');

  new Gauge({
    name: 'natprox_clients_connected',
    help: 'Clients connected to this proxy now, by transport.',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      this.reset();
      const counts: Record<string, number> = { native: 0, pushprox: 0 };
      for (const session of sessions.all()) {
        counts[session.transport] = (counts[session.transport] ?? 0) + 1;
      }
      for (const [transport, count] of Object.entries(counts)) this.set({ transport }, count);
    },
  });
  new Gauge({
    name: 'natprox_scrapes_in_flight',
    help: 'Streams being relayed now: scrapes and CONNECT tunnels.',
    registers: [registry],
    collect() {
      this.set(activeScrapes());
    },
  });
  const scrapes = new Counter({
    name: 'natprox_scrapes_total',
    help: 'Scrapes through the proxy by how they ended.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of SCRAPE_OUTCOMES) {
    scrapes.inc({ outcome }, 0);
  }
  const duration = new Histogram({
    name: 'natprox_scrape_duration_seconds',
    help: 'Time from the scraper request to the end of the relayed response.',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'natprox_relayed_bytes_total',
    help: 'Bytes relayed between clients and scrapers: response bodies, and CONNECT traffic both ways.',
    registers: [registry],
  });
  const tunnelConnects = new Counter({
    name: 'natprox_tunnel_connects_total',
    help: 'Tunnels accepted.',
    labelNames: ['transport'],
    registers: [registry],
  });
  const disconnects = new Counter({
    name: 'natprox_tunnel_disconnects_total',
    help: 'Tunnels that ended.',
    labelNames: ['transport'],
    registers: [registry],
  });
  const rejections = new Counter({
    name: 'natprox_tunnel_rejections_total',
    help: 'Tunnel requests refused, by HTTP status.',
    labelNames: ['status'],
    registers: [registry],
  });

  registerPerClientMetrics(registry, events, sessions);
  events.on('scrapeFinished', (info) => {
    scrapes.inc({ outcome: info.outcome });
    duration.observe({ outcome: info.outcome }, info.durationMs / 1000);
    if (info.bytes > 0) bytes.inc(info.bytes);
  });
  const connectTunnels = new Counter({
    name: 'natprox_connect_tunnels_total',
    help: 'CONNECT tunnels (scrapes of https targets) by how they ended.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  events.on('httpsConnectFinished', (info) => {
    connectTunnels.inc({ outcome: info.outcome });
    if (info.bytes > 0) bytes.inc(info.bytes);
  });
  events.on('tunnelConnected', (session) => tunnelConnects.inc({ transport: session.transport }));
  events.on('tunnelDisconnected', (session) => disconnects.inc({ transport: session.transport }));
  events.on('tunnelRejected', (info) => rejections.inc({ status: String(info.status) }));
  return registry;
}
