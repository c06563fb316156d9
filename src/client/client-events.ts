import { EventEmitter } from 'node:events';
import type { ServeOutcome } from '../wire/failures.js';
import type { TunnelName } from './proxy-endpoint.js';

/** A tunnel's state (native or PushProx), readable by metrics, logs and status output. */
export type ConnectionState =
  | { state: 'connecting'; attempt: number }
  | { state: 'connected'; since: Date }
  | { state: 'reconnecting'; attempt: number; delayMs: number; lastError: string }
  | { state: 'closed' };

// The outcomes are listed with the failure table, which gives each refusal its outcome.
export type { ServeOutcome } from '../wire/failures.js';

export interface ScrapeServed {
  name: string;
  port: number;
  path: string;
  outcome: ServeOutcome;
  status: number;
  durationMs: number;
  bytes: number;
  reason?: string;
}

export interface ClientEventMap {
  /** One tunnel's state changed; each tunnel (one per proxy, or per address) has its own. */
  state: [state: ConnectionState, tunnel: TunnelName];
  /** A tunnel was dropped for good (its address left the proxy's DNS answer). */
  tunnelRemoved: [tunnel: TunnelName];
  /** --connect-all-addresses: the proxy's host resolved to these addresses. */
  proxyResolved: [proxy: string, addresses: string[]];
  /** --connect-all-addresses: resolving failed; the tunnels already up are kept. */
  proxyResolveFailed: [proxy: string, reason: string];
  scrapeServed: [info: ScrapeServed];
}

/** Core client code reports here; metrics and logs subscribe. */
export class ClientEvents extends EventEmitter<ClientEventMap> {}
