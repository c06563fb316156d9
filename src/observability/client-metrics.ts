import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../util/process-metrics.js';
import type { ClientEvents } from '../client/client-events.js';
import type { TunnelName } from '../client/proxy-endpoint.js';

/** Turns client events into prom-client metrics on a registry of its own. */
export function createClientMetrics(events: ClientEvents): Registry {
  const registry = new Registry();
  collectProcessMetrics(registry, 'natprox_client_');
  // One series per tunnel: proxy="host:port[/path]", plus address="…" with
  // --connect-all-addresses (one tunnel per address of the proxy's host).
  const labelNames = ['proxy', 'address'] as const;
  const up = new Gauge({
    name: 'natprox_client_tunnel_up',
    help: '1 while the tunnel to this proxy (address) is connected, else 0.',
    labelNames,
    registers: [registry],
  });
  const tunnelConnects = new Counter({
    name: 'natprox_client_tunnel_connects_total',
    help: 'Tunnels established, per proxy (address).',
    labelNames,
    registers: [registry],
  });
  const failures = new Counter({
    name: 'natprox_client_tunnel_failures_total',
    help: 'Tunnel attempts that failed or tunnels that dropped, per proxy (address).',
    labelNames,
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
  events.on('state', (state, tunnel) => {
    const labels = tunnelLabels(tunnel);
    up.set(labels, state.state === 'connected' ? 1 : 0);
    // Counters start at 0 for each tunnel, so rate() and increase() see the first event.
    tunnelConnects.inc(labels, state.state === 'connected' ? 1 : 0);
    failures.inc(labels, state.state === 'reconnecting' ? 1 : 0);
  });
  events.on('tunnelRemoved', (tunnel) => {
    const labels = tunnelLabels(tunnel);
    up.remove(labels);
    tunnelConnects.remove(labels);
    failures.remove(labels);
  });
  events.on('scrapeServed', (info) => {
    scrapes.inc({ outcome: info.outcome });
    duration.observe(info.durationMs / 1000);
    if (info.bytes > 0) bytes.inc(info.bytes);
  });
  return registry;
}

function tunnelLabels(tunnel: TunnelName): Partial<Record<'proxy' | 'address', string>> {
  return tunnel.address === undefined
    ? { proxy: tunnel.proxy }
    : { proxy: tunnel.proxy, address: tunnel.address };
}
