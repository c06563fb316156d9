import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClientEvents } from '../client/client-events.js';

/** Turns client events into prom-client metrics on a registry of its own. */
export function createClientMetrics(events: ClientEvents): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'natprox_client_' });
  const up = new Gauge({
    name: 'natprox_client_tunnel_up',
    help: '1 while the tunnel to the proxy is connected.',
    registers: [registry],
  });
  up.set(0);
  const connects = new Counter({
    name: 'natprox_client_tunnel_connects_total',
    help: 'Tunnels established.',
    registers: [registry],
  });
  const failures = new Counter({
    name: 'natprox_client_tunnel_failures_total',
    help: 'Tunnel attempts that failed or tunnels that dropped.',
    registers: [registry],
  });
  const scrapes = new Counter({
    name: 'natprox_client_scrapes_total',
    help: 'Scrapes served by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'natprox_client_scrape_duration_seconds',
    help: 'Time to fetch and relay one local target.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'natprox_client_relayed_bytes_total',
    help: 'Response body bytes relayed to the proxy.',
    registers: [registry],
  });
  events.on('state', (state) => {
    up.set(state.state === 'connected' ? 1 : 0);
    if (state.state === 'connected') connects.inc();
    if (state.state === 'reconnecting') failures.inc();
  });
  events.on('scrapeServed', (info) => {
    scrapes.inc({ outcome: info.outcome });
    duration.observe(info.durationMs / 1000);
    if (info.bytes > 0) bytes.inc(info.bytes);
  });
  return registry;
}
