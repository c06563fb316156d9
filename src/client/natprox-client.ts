import { ConfigError, NatproxError } from '../errors.js';
import { DEFAULT_HEARTBEAT } from '../wire/heartbeat.js';
import { dialTunnel } from './native/tunnel-dialer.js';
import { VERSION } from '../version.js';
import { Allowlist } from './allowlist.js';
import { DEFAULT_BACKOFF } from './backoff.js';
import { ClientEvents, type ConnectionState } from './client-events.js';
import type { ClientOptions } from './client-options.js';
import { NativeClientTransport } from './native/native-client-transport.js';
import { pushProxTransport } from './pushprox/pushprox-client.js';
import { HttpsConnectExecutor } from './native/https-connect-executor.js';
import { clientProxies, type ProxyEndpoint, type TunnelName } from './proxy-endpoint.js';
import { ProxyTunnels } from './proxy-tunnels.js';
import { systemResolveHost } from './resolve-host.js';
import { ScrapeExecutor } from './native/scrape-executor.js';

const DEFAULT_RERESOLVE_INTERVAL_MS = 30_000;
/** A tunnel whose address left DNS: scrapes in flight on it get this long to finish. */
const REMOVED_ADDRESS_GRACE_MS = 10_000;

/**
 * The private side: keeps a tunnel to each proxy and serves scrapes of its allowlisted
 * targets arriving through any of them.
 */
export class NatproxClient {
  readonly events = new ClientEvents();
  private readonly executor: ScrapeExecutor;
  private readonly httpsConnects: HttpsConnectExecutor;
  private readonly transport: ProxyTunnels;
  readonly allowlist: Allowlist;
  readonly proxies: ProxyEndpoint[];

  constructor(readonly options: ClientOptions) {
    this.proxies = clientProxies(options);
    this.allowlist = new Allowlist(options.allow);
    const names = new Set(options.names);
    this.executor = new ScrapeExecutor(names, this.allowlist, this.events);
    this.httpsConnects = new HttpsConnectExecutor(names, this.allowlist, this.events);
    const registration = {
      names: options.names,
      labels: options.labels ?? {},
      ports: this.allowlist.ports,
      version: VERSION,
    };
    const pushprox = options.transport === 'pushprox';
    if (pushprox && options.connectAllAddresses) {
      throw new ConfigError(
        '--connect-all-addresses works with the native transport only; a PushProx proxy keeps no per-connection state, so list each PushProx proxy with its own --proxy-url instead',
      );
    }
    this.transport = new ProxyTunnels({
      endpoints: this.proxies,
      events: this.events,
      connectAllAddresses: options.connectAllAddresses ?? false,
      resolveHost: options.resolveHost ?? systemResolveHost,
      reresolveIntervalMs: options.reresolveIntervalMs ?? DEFAULT_RERESOLVE_INTERVAL_MS,
      removeGraceMs: REMOVED_ADDRESS_GRACE_MS,
      createTunnel: (endpoint, tunnel, address) => {
        if (pushprox) return pushProxTransport(options, endpoint, this.allowlist, this.events);
        return new NativeClientTransport({
          events: this.events,
          tunnel,
          backoff: options.backoff ?? DEFAULT_BACKOFF,
          resetBackoffAfterMs: options.resetBackoffAfterMs ?? 30_000,
          dial: (signal) =>
            dialTunnel({
              signal,
              proxyUrl: endpoint.url,
              address,
              registration,
              token: endpoint.token,
              tls: endpoint.tls,
              handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
              heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
              onStream: (stream, headers) => {
                if (headers[':method'] === 'CONNECT') this.httpsConnects.handle(stream, headers);
                else this.executor.handle(stream, headers);
              },
            }),
        });
      },
    });
  }

  /** Connected while at least one tunnel is; see `tunnels` for each one. */
  get state(): ConnectionState {
    return this.transport.state;
  }

  /** Every tunnel (one per proxy, or per proxy address) with its own state. */
  get tunnels(): Array<{ tunnel: TunnelName; state: ConnectionState }> {
    return this.transport.tunnels;
  }

  start(): void {
    this.transport.start();
  }

  /**
   * Resolves once at least one tunnel is up: the client can serve scrapes from then on
   * (through that proxy). Rejects after `timeoutMs`. See waitAllConnected for every tunnel.
   */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.state.state === 'connected', timeoutMs, 'connected');
  }

  /** Resolves once every tunnel (at least one) is up at the same time; rejects after `timeoutMs`. */
  waitAllConnected(timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(
      () => {
        const tunnels = this.tunnels;
        return tunnels.length > 0 && tunnels.every((t) => t.state.state === 'connected');
      },
      timeoutMs,
      'all tunnels connected',
    );
  }

  /** Stops reconnecting and lets in-flight scrapes finish within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.transport.stop(graceMs);
    this.executor.close();
    this.httpsConnects.close();
  }

  private waitUntil(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off('state', onState);
        const states = this.tunnels
          .map(
            ({ tunnel, state }) =>
              `${tunnel.proxy}${tunnel.address ? ` (${tunnel.address})` : ''}: ${state.state}`,
          )
          .join(', ');
        reject(
          new NatproxError(
            'NATPROX_TUNNEL_FAILED',
            `not ${what} within ${timeoutMs} ms (${states || 'no tunnel yet'})`,
          ),
        );
      }, timeoutMs);
      const onState = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.events.off('state', onState);
        resolve();
      };
      this.events.on('state', onState);
    });
  }
}
