import { EventEmitter } from 'node:events';

/** The connector's state, readable by metrics, logs and status output. */
export type ConnectionState =
  | { state: 'connecting'; attempt: number }
  | { state: 'connected'; since: Date }
  | { state: 'reconnecting'; attempt: number; delayMs: number; lastError: string }
  | { state: 'closed' };

export type ServeOutcome =
  | 'ok'
  | 'forbidden'
  | 'target_error'
  | 'timeout'
  | 'cancelled'
  | 'misdirected'
  /** PushProx transport: the answer could not be pushed to the proxy. */
  | 'push_failed';

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
  state: [state: ConnectionState];
  scrapeServed: [info: ScrapeServed];
}

/** Core client code reports here; metrics and logs subscribe. */
export class ClientEvents extends EventEmitter<ClientEventMap> {}
