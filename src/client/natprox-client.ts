import { DEFAULT_HEARTBEAT, type HeartbeatOptions } from '../tunnel/heartbeat.js';
import type { ClientTls } from '../tunnel/tls-connect.js';
import { dialTunnel } from '../tunnel/tunnel-dialer.js';
import { VERSION } from '../version.js';
import { Allowlist, type AllowedTarget } from './allowlist.js';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { ClientEvents } from './client-events.js';
import type { ClientTransport } from './client-transport.js';
import { Connector } from './connector.js';
import { pushProxTransport } from '../pushprox/pushprox-client.js';
import { ConnectExecutor } from './connect-executor.js';
import { ScrapeExecutor } from './scrape-executor.js';

export interface ClientOptions {
  proxyUrl: URL;
  names: string[];
  allow: AllowedTarget[];
  labels?: Record<string, string>;
  token?: string | undefined;
  tls?: ClientTls | undefined;
  heartbeat?: HeartbeatOptions;
  backoff?: BackoffOptions;
  handshakeTimeoutMs?: number;
  resetBackoffAfterMs?: number;
  /**
   * 'native' (default): the reverse-HTTP/2 tunnel to natprox proxy. 'pushprox': PushProx's
   * long-poll protocol, to a PushProx proxy (or natprox proxy); serves exactly one name.
   */
  transport?: 'native' | 'pushprox' | undefined;
  /** PushProx transport: a poll held this long unrefused counts as connected. */
  pollAcceptedAfterMs?: number;
}

/** The private side: keeps a tunnel to the proxy and serves scrapes of its allowlisted targets. */
export class NatproxClient {
  readonly events = new ClientEvents();
  private readonly executor: ScrapeExecutor;
  private readonly connects: ConnectExecutor;
  private readonly connector: ClientTransport;
  readonly allowlist: Allowlist;

  constructor(readonly options: ClientOptions) {
    this.allowlist = new Allowlist(options.allow);
    const names = new Set(options.names);
    this.executor = new ScrapeExecutor(names, this.allowlist, this.events);
    this.connects = new ConnectExecutor(names, this.allowlist, this.events);
    const registration = {
      names: options.names,
      labels: options.labels ?? {},
      ports: this.allowlist.ports,
      version: VERSION,
    };
    if (options.transport === 'pushprox') {
      this.connector = pushProxTransport(options, this.allowlist, this.events);
      return;
    }
    this.connector = new Connector({
      events: this.events,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      resetBackoffAfterMs: options.resetBackoffAfterMs ?? 30_000,
      dial: () =>
        dialTunnel({
          proxyUrl: options.proxyUrl,
          registration,
          token: options.token,
          tls: options.tls,
          handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
          heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
          onStream: (stream, headers) => {
            if (headers[':method'] === 'CONNECT') this.connects.handle(stream, headers);
            else this.executor.handle(stream, headers);
          },
        }),
    });
  }

  get state() {
    return this.connector.state;
  }

  start(): void {
    this.connector.start();
  }

  /** Resolves once the tunnel is up (or rejects after `timeoutMs`). */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.connector.state.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off('state', onState);
        reject(new Error(`not connected within ${timeoutMs} ms (state ${this.state.state})`));
      }, timeoutMs);
      const onState = (state: { state: string }): void => {
        if (state.state !== 'connected') return;
        clearTimeout(timer);
        this.events.off('state', onState);
        resolve();
      };
      this.events.on('state', onState);
    });
  }

  /** Stops reconnecting and lets in-flight scrapes finish within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.connector.stop(graceMs);
    this.executor.close();
    this.connects.close();
  }
}
