import type { Http2Stream } from 'node:http2';

/**
 * Lets a stream go that the peer reset with NO_ERROR while bytes written to it were still
 * queued: a plain destroy() of the peer's end sends that reset (natprox proxies did so for a
 * body they cut off, max_response_bytes, before they used CANCEL).
 *
 * Node 20 destroys such a stream only once its writable side has finished, but the queued
 * writes of a closed stream neither go out nor fail until the stream is destroyed: it would
 * stay for good, and with it the session, which on a GOAWAY waits for its streams (and stops
 * reading, so the proxy's FIN goes unseen): the tunnel's socket would never close. Node ends
 * the readable side right after such a reset, so that is where to check. A stream that closed
 * normally has nothing queued: END_STREAM goes out only after its last write is done.
 */
export function releaseOnPeerReset(stream: Http2Stream): void {
  // One shared listener, no closure: every scrape's stream gets it.
  stream.on('end', releaseIfReset);
}

function releaseIfReset(this: Http2Stream): void {
  if (this.closed && !this.destroyed && this.writableLength > 0) this.destroy();
}
