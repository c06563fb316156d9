import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { RelayOptions } from '../util/relay-body.js';
import type { ClientRefusalCode } from '../wire/failures.js';

/** One scrape to run against a local target, whatever transport brought it. */
export interface LocalScrape {
  name: string;
  port: number;
  method: string;
  /**
   * Path and query to fetch; the allowlist checks the path. A `_scheme=https` parameter
   * (PushProx's convention) is taken off and makes the fetch https.
   */
  pathAndQuery: string;
  /** End-to-end headers to send on; Host becomes `authority`. */
  headers: OutgoingHttpHeaders;
  /** NAME:PORT as the scraper addressed it, sent as Host (and as the name TLS verifies). */
  authority: string;
  deadlineMs: number;
  /**
   * The request body, for a request that has one: streamed to the target only once the
   * allowlist granted the method; never for a GET or HEAD (refused with 400).
   */
  body?: Readable | Buffer | undefined;
}

/** How a fetch ended before a response; the transport answers in its own way. */
export interface LocalFetchHandlers {
  /**
   * Refused (name, allowlist) or failed (target down, deadline): natprox's own answer, with
   * the status and outcome the failure table gives `code`. `allow` is set for
   * NATPROX_METHOD_NOT_ALLOWED (405): the Allow header.
   */
  refused(code: ClientRefusalCode, reason: string, allow?: string): void;
  /** The requester went away before the target answered. */
  cancelled(): void;
  /**
   * The target answered. Call `relay` (now or later: the body waits, unread) or `discard`;
   * the deadline keeps running until the body is through.
   */
  response(response: TargetResponse): void;
}

/** What `TargetResponse.relay` may be told: a relay's options, but its own end check. */
export interface BodyRelayOptions extends Omit<RelayOptions, 'endedCleanly' | 'abortSource'> {
  /**
   * Asked when the destination closes after the body was ended but before the callback of
   * that end: true when everything written went out. Node closes an HTTP/2 stream as soon
   * as its last frame is sent, which can be before the callbacks of its last writes.
   */
  deliveredWhenClosed?: () => boolean;
}

/** A target's answer: status and headers now, the body when it is asked for. */
export interface TargetResponse {
  readonly statusCode: number;
  /** As Node's IncomingMessage would hold them (hop-by-hop ones included). */
  readonly headers: IncomingHttpHeaders;
  /**
   * Streams the body into `destination` with back-pressure and ends it only when the body
   * arrived in full: a body cut off (target gone, deadline, stop) reaches the destination
   * through `abortDestination`, never as a short complete one. `done` is called once.
   */
  relay(destination: Writable, options: BodyRelayOptions, done: (err?: Error) => void): void;
  /** Drops the answer (it cannot be relayed) and frees the connection. */
  discard(): void;
}

/** One fetch in flight. */
export interface LocalFetch {
  /** Why the fetch was stopped, if it was. */
  readonly stopped: 'deadline' | 'cancelled' | undefined;
  /** Aborts the local request (and its body); idempotent, and a no-op once it is through. */
  stop(why: 'deadline' | 'cancelled'): void;
}
