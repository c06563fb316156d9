import { DEFAULT_CONTROL_BYTES_PER_SECOND } from './native/proxy-tunnel-session.js';

/** What the proxy lets each peer take; every field has a config-file key (README). */
export interface ProxyLimits {
  maxClients: number;
  maxStreamsPerClient: number;
  maxNamesPerClient: number;
  maxResponseBytes: number;
  /** Labels and ports one registration may carry (they multiply into /clients). */
  maxLabelsPerClient: number;
  maxPortsPerClient: number;
  /** Defaults for clients: entries without max_names/max_tunnels (see entryLimits). */
  maxNamesPerEntry: number;
  maxTunnelsPerName: number;
  /** Largest request body (remote_read queries, say) passed on to a client. */
  maxRequestBytes: number;
  /**
   * Streams one scraper credential may have in flight to one client; undefined: 3/4 of
   * maxStreamsPerClient (at least 1), so other scrapers always find room.
   */
  maxStreamsPerScraper?: number | undefined;
  /** Unanswered requests one connection may have; past it the connection is closed. */
  maxPipelinedRequests: number;
  /** Bytes a tunnel may send per second beyond what its scrapes need (see ControlBudget). */
  maxTunnelControlBytesPerSecond: number;
  /** How long new connections from an address are refused after one was cut off (0: never). */
  floodBlockMs: number;
}

export const DEFAULT_PROXY_LIMITS: ProxyLimits = {
  maxClients: 10_000,
  maxStreamsPerClient: 64,
  maxNamesPerClient: 16,
  maxResponseBytes: 512 * 1024 * 1024,
  maxLabelsPerClient: 32,
  maxPortsPerClient: 64,
  maxNamesPerEntry: 100,
  maxTunnelsPerName: 4,
  maxRequestBytes: 16 * 1024 * 1024,
  maxPipelinedRequests: 16,
  maxTunnelControlBytesPerSecond: DEFAULT_CONTROL_BYTES_PER_SECOND,
  floodBlockMs: 10_000,
};

/** Timeouts against slow or idle peers (slowloris); tests shorten them. */
export interface ProxyTimeouts {
  /** Request line and headers (scrapes, operator requests, tunnel upgrades) must arrive within this. */
  headersMs: number;
  /** A keep-alive connection with no request in flight is closed after this. */
  idleMs: number;
  /** The TLS handshake must finish within this. */
  tlsHandshakeMs: number;
}

export const DEFAULT_PROXY_TIMEOUTS: ProxyTimeouts = {
  headersMs: 30_000,
  idleMs: 65_000,
  tlsHandshakeMs: 10_000,
};
