import type { HeartbeatOptions } from '../wire/heartbeat.js';
import type { ClientTls } from '../wire/tls-connect.js';
import type { AllowedTarget } from './allowlist.js';
import type { BackoffOptions } from './backoff.js';
import type { ProxyEndpoint } from './proxy-endpoint.js';
import type { ResolveHost } from './resolve-host.js';

/** What a NatproxClient is told: where the proxies are, what it serves, how it reconnects. */
export interface ClientOptions {
  /** The proxy, when there is one; `token` and `tls` go with it. Or give `proxies`. */
  proxyUrl?: URL | undefined;
  /**
   * Several proxies, each with its own token and TLS trust: one independent tunnel (own
   * heartbeats, backoff and state) to each. Replaces `proxyUrl`, `token` and `tls`.
   */
  proxies?: ProxyEndpoint[] | undefined;
  names: string[];
  allow: AllowedTarget[];
  labels?: Record<string, string>;
  token?: string | undefined;
  tls?: ClientTls | undefined;
  /**
   * Resolve every A/AAAA address of each proxy's host and keep one tunnel per address
   * (replicas behind one name), following DNS every `reresolveIntervalMs`.
   */
  connectAllAddresses?: boolean | undefined;
  /** How hosts are resolved for connectAllAddresses; default the system resolver. */
  resolveHost?: ResolveHost;
  /** connectAllAddresses: how often to resolve again (default 30 s). */
  reresolveIntervalMs?: number;
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
