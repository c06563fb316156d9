import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Registration } from '../wire/protocol.js';
import type { CancelSignal } from '../util/scrape-cancel.js';

export type Transport = 'native' | 'pushprox';

/** What the proxy asks a client to fetch. */
export interface ScrapeRequest {
  name: string;
  port: number;
  /** The scraper's method (GET when not set); the client's allowlist decides which it fetches. */
  method?: string | undefined;
  /**
   * The request body, for a request that has one (never a GET or HEAD): streamed to the
   * client within the scrape's deadline, its size already limited (max_request_bytes).
   */
  body?: Readable | undefined;
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
  /**
   * Asked when the body ends: false when the transport knows it was cut off (a lost
   * connection ends the stream too). The proxy then breaks the scraper's response instead
   * of ending it, so Prometheus never stores a truncated scrape as complete.
   */
  complete: () => boolean;
  /** Stops the body early (too large, scraper gone) and tells the client it was cancelled. */
  cancel: () => void;
}

/** A byte stream to NAME:PORT, asked for with HTTP CONNECT (scrapes of https targets). */
export interface HttpsConnectRequest {
  name: string;
  port: number;
  /** Time the client has to connect to the target. */
  connectTimeoutMs: number;
}

/** 200 and a duplex to the target, or an error status with the reason as body. */
export interface HttpsConnectResponse extends ScrapeResponse {
  body: Duplex;
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
  /** grantKey() of the grant it authenticated with (none when the proxy has no `clients:`). */
  readonly grantKey: string | undefined;
  readonly closed: boolean;
  /**
   * False while the session cannot take a scrape now (a PushProx client with no poll
   * waiting): routing then prefers another live session for the same name. Undefined: ready.
   */
  readonly ready?: boolean;
  /** Resolves with the response head; rejects with NATPROX_CLIENT_LOST or the signal's reason. */
  scrape(request: ScrapeRequest, signal: CancelSignal): Promise<ScrapeResponse>;
  /** Opens a byte stream to the target; undefined when the transport cannot (PushProx). */
  httpsConnect?(request: HttpsConnectRequest, signal: CancelSignal): Promise<HttpsConnectResponse>;
  /** Stops new scrapes; in-flight ones end with the connection. */
  close(reason: string): void;
  /** Tears the connection down at once, in-flight scrapes included (native tunnels). */
  destroy?(reason: string): void;
  onClose(listener: (reason: string) => void): void;
}
