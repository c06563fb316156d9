import { EventEmitter } from 'node:events';
import type { ScrapeOutcome } from '../wire/failures.js';
import type { ClientSession } from './client-session.js';

// The outcomes are listed with the failure table, which gives each failure its outcome.
export { SCRAPE_OUTCOMES, type ScrapeOutcome } from '../wire/failures.js';

export interface ScrapeFinished {
  name: string;
  port: number;
  path: string;
  outcome: ScrapeOutcome;
  /** Status sent to the scraper; 0 when it had gone before one was sent. */
  status: number;
  durationMs: number;
  bytes: number;
  sessionId?: string;
  reason?: string;
}

export interface ProxyEventMap {
  tunnelConnected: [session: ClientSession];
  tunnelDisconnected: [session: ClientSession, reason: string];
  tunnelRejected: [info: { remoteAddress: string; status: number; reason: string }];
  scrapeFinished: [info: ScrapeFinished];
  /** A CONNECT tunnel (https target) ended; bytes count both directions. */
  httpsConnectFinished: [info: ScrapeFinished];
  /**
   * A connection the proxy closed because it asked for more work than one peer may (too
   * many pipelined requests, a tunnel's frame flood); `address` is the peer's IP address.
   */
  connectionCutOff: [info: { address: string; remoteAddress: string; reason: string }];
  listening: [info: { address: string; tls: boolean }];
}

/** Core proxy code reports here; metrics and logs subscribe. They observe, they never steer. */
export class ProxyEvents extends EventEmitter<ProxyEventMap> {}
