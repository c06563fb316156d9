import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { BODY_COMPLETE_TRAILER, LENGTH_COMPLETES_HEADER } from './protocol.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

/*
 * The rule that tells a complete body from a cut-off one (docs/tunnel-protocol.md, "Complete
 * or cut off"). HTTP/2 ends a stream the same way whether its body was finished or its
 * source died, so a relayed body is whole only when one of these holds:
 *
 * - the answer has no body (a 204 or 304, or the answer to a HEAD);
 * - the transport says so: on the native tunnel, the client ended the stream with
 *   BODY_COMPLETE_TRAILER, or the answer is the client's own (x-natprox-error); on PushProx,
 *   the pushed body reached the end its framing declares;
 * - the answer has a Content-Length and exactly that many bytes arrived.
 *
 * The client sends the trailer after every body it relayed in full, except a body with a
 * Content-Length when the proxy said it counts those (LENGTH_COMPLETES_HEADER). Anything
 * else is cut off, and the scraper's response is broken instead of ended. The way back: a
 * stream the client ended that closes without a reset delivered its answer; the proxy
 * resets a body it cuts off (CANCEL).
 */

/** Proxy: tells the client, in a scrape's `headers`, that this proxy counts a body's length. */
export function announceLengthCounting(headers: OutgoingHttpHeaders): void {
  headers[LENGTH_COMPLETES_HEADER] = '1';
}

/** Client: the trailer that ends a body relayed in full. */
export const COMPLETE_TRAILERS: OutgoingHttpHeaders = { [BODY_COMPLETE_TRAILER]: '1' };

/**
 * Client: whether the body of an answer with `responseLength` (its Content-Length, if any)
 * must end with the trailer, for a scrape the proxy sent with `requestHeaders`.
 */
export function needsCompleteTrailer(
  requestHeaders: IncomingHttpHeaders,
  responseLength: number | undefined,
): boolean {
  const proxyCountsLength =
    requestHeaders[LENGTH_COMPLETES_HEADER] === '1' && requestHeaders[':method'] !== 'HEAD';
  return !(proxyCountsLength && responseLength !== undefined);
}

/** Proxy, native tunnel: whether `trailers` end a body relayed in full. */
export function trailersMarkComplete(trailers: IncomingHttpHeaders): boolean {
  return trailers[BODY_COMPLETE_TRAILER] === '1';
}

/**
 * Proxy, native tunnel: whether the transport has the body whole: the trailer came, or the
 * answer is the client's own (it carries x-natprox-error, and no trailer).
 */
export function streamComplete(trailerSeen: boolean, ownAnswer: boolean): boolean {
  return trailerSeen || ownAnswer;
}

/**
 * Proxy: whether a body whose source ended is whole: it has none (`noBody`), the transport
 * says so (`transportComplete`), or exactly its declared length arrived.
 */
export function bodyIsWhole(
  noBody: boolean,
  transportComplete: boolean,
  declaredLength: number | undefined,
  bytes: number,
): boolean {
  return noBody || transportComplete || (declaredLength !== undefined && bytes === declaredLength);
}

/**
 * Proxy: whether a relay that failed (the scraper closed) had already passed the whole
 * declared body on: the scraper had it all and left before the end-of-body trailer.
 */
export function wholeBeforeFailure(declaredLength: number | undefined, bytes: number): boolean {
  return declaredLength !== undefined && declaredLength > 0 && bytes === declaredLength;
}

/**
 * Client: whether a stream this side ended and that closed delivered its answer: it closed
 * without a reset. Node closes an HTTP/2 stream as soon as its last frame is sent, which can
 * be before the callbacks of its last writes, so the reset code decides, not the callbacks.
 */
export function streamDelivered(stream: { writableEnded: boolean; rstCode?: number }): boolean {
  return stream.writableEnded && stream.rstCode === NGHTTP2_NO_ERROR;
}
