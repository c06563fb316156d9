import { AddressWatcher } from './address-watcher.js';
import type { ClientEvents, ConnectionState } from './client-events.js';
import type { ClientTransport } from './client-transport.js';
import { proxyLabel, type ProxyEndpoint, type TunnelName } from './proxy-endpoint.js';
import type { ResolveHost } from './resolve-host.js';
import { TunnelSet } from './tunnel-set.js';
import { urlHostPort } from '../util/host-port.js';

export interface ProxyTunnelsOptions {
  endpoints: ProxyEndpoint[];
  events: ClientEvents;
  /** Makes one tunnel's transport: to `endpoint`, at `address` when one is given. */
  createTunnel: (
    endpoint: ProxyEndpoint,
    tunnel: TunnelName,
    address: string | undefined,
  ) => ClientTransport;
  /** One tunnel per address of each proxy's host, following DNS; else one per proxy. */
  connectAllAddresses: boolean;
  resolveHost: ResolveHost;
  reresolveIntervalMs: number;
  /** Scrapes in flight on the tunnel of an address that left DNS get this long. */
  removeGraceMs: number;
}

/** After a failed resolution, try again this soon (or at the interval, if that is sooner). */
const RESOLVE_RETRY_MS = 5_000;

/**
 * One independent tunnel per proxy, or with connectAllAddresses one per address of each
 * proxy's host: tunnels are added for addresses that appear and closed for those that go.
 */
export class ProxyTunnels implements ClientTransport {
  private readonly set: TunnelSet;
  private readonly watchers: AddressWatcher[] = [];
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly options: ProxyTunnelsOptions) {
    this.set = new TunnelSet(options.events);
    for (const endpoint of options.endpoints) {
      const proxy = proxyLabel(endpoint.url);
      if (!options.connectAllAddresses) {
        this.set.add({ proxy }, options.createTunnel(endpoint, { proxy }, undefined));
        continue;
      }
      this.watchers.push(
        new AddressWatcher({
          host: urlHostPort(endpoint.url).host,
          resolveHost: options.resolveHost,
          intervalMs: options.reresolveIntervalMs,
          retryMs: Math.min(RESOLVE_RETRY_MS, options.reresolveIntervalMs),
          onAddresses: (addresses) => this.follow(endpoint, proxy, addresses),
          onFailure: (reason) => options.events.emit('proxyResolveFailed', proxy, reason),
        }),
      );
    }
  }

  get state(): ConnectionState {
    return this.set.state;
  }

  get tunnels(): Array<{ tunnel: TunnelName; state: ConnectionState }> {
    return this.set.tunnels;
  }

  start(): void {
    this.set.start();
    for (const watcher of this.watchers) watcher.start();
  }

  async stop(graceMs: number): Promise<void> {
    for (const watcher of this.watchers) watcher.stop();
    await Promise.all([this.set.stop(graceMs), ...this.removals]);
  }

  /** Adds a tunnel for each new address of `proxy`, closes those of addresses now gone. */
  private follow(endpoint: ProxyEndpoint, proxy: string, addresses: string[]): void {
    this.options.events.emit('proxyResolved', proxy, addresses);
    const current = new Set(addresses);
    for (const { tunnel } of this.set.tunnels) {
      if (tunnel.proxy !== proxy || tunnel.address === undefined) continue;
      if (current.has(tunnel.address)) continue;
      const removal = this.set.remove(tunnel, this.options.removeGraceMs);
      this.removals.add(removal);
      void removal.finally(() => this.removals.delete(removal));
    }
    for (const address of addresses) {
      const tunnel = { proxy, address };
      if (!this.set.has(tunnel)) {
        this.set.add(tunnel, this.options.createTunnel(endpoint, tunnel, address));
      }
    }
  }
}
