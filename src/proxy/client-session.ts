import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Registration } from '../tunnel/protocol.js';

export type Transport = 'native' | 'pushprox';

/** What the proxy asks a client to fetch. */
export interface ScrapeRequest {
  name: string;
  port: number;
  /** Path and query, as the scraper sent them. */
  pathAndQuery: string;
  /** End-to-end headers of the scraper's request. */
  headers: OutgoingHttpHeaders;
  /** Time the client has for the whole fetch. */
  deadlineMs: number;
}

/** The head of the client's answer; the body streams. */
export interface ScrapeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

/**
 * One connected client as the proxy's routing sees it, whatever carries it (the native
 * tunnel or PushProx long-polling). Routing, deadlines and bookkeeping depend only on this.
 */
export interface ClientSession {
  readonly id: string;
  readonly transport: Transport;
  readonly registration: Registration;
  readonly remoteAddress: string;
  readonly connectedAt: Date;
  readonly closed: boolean;
  /** Resolves with the response head; rejects with NATPROX_CLIENT_LOST or the signal's reason. */
  scrape(request: ScrapeRequest, signal: AbortSignal): Promise<ScrapeResponse>;
  /** Stops new scrapes; in-flight ones end with the connection. */
  close(reason: string): void;
  onClose(listener: (reason: string) => void): void;
}
