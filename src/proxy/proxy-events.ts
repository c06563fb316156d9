import { EventEmitter } from 'node:events';
import type { ClientSession } from './client-session.js';

/** How a scrape through the proxy ended; the `outcome` label of natprox_scrapes_total. */
export const SCRAPE_OUTCOMES = [
  'ok',
  'no_client',
  'unauthorized',
  'bad_request',
  'busy',
  'too_large',
  'forbidden',
  'target_error',
  'timeout',
  'client_lost',
  'cancelled',
] as const;

export type ScrapeOutcome = (typeof SCRAPE_OUTCOMES)[number];

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
