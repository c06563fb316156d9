import type { Readable, Writable } from 'node:stream';
import { ignore } from './ignore.js';

/**
 * How much a relay lets wait in its destination before it pauses the source. Node's streams
 * report "full" at 16 KiB, which on a large body meant a pause, a drain and a resume for
 * nearly every 16 KiB HTTP/2 frame; with 1 MiB a federate body keeps flowing (+20% MB/s in
 * the bench), and a slow receiver still stops the sender (the tunnel's stream window bounds
 * what arrives meanwhile).
 */
export const RELAY_ROOM_BYTES = 1024 * 1024;

/** Writes `chunk`; false when the source should pause until the destination drains. */
export function writeWithRoom(destination: Writable, chunk: Buffer): boolean {
  return destination.write(chunk) || destination.writableLength < RELAY_ROOM_BYTES;
}

export interface RelayOptions {
  /** Asked when the source ends: false means it was cut off (the end was not a real one). */
  endedCleanly?: () => boolean;
  /** Sees each chunk before it is written; an error returned stops the relay (limits). */
  inspect?: (chunk: Buffer) => Error | undefined;
  /** Tears the destination down when the relay fails (default: destroy it). */
  abortDestination?: (err: Error) => void;
  /** Stops the source when the relay fails (default: destroy it). */
  abortSource?: () => void;
}

/** Tears `destination` down after a failed relay, as `options` says (default: destroy it). */
export function abortRelayDestination(
  destination: Writable,
  options: Pick<RelayOptions, 'abortDestination'>,
  err: Error,
): void {
  if (options.abortDestination) options.abortDestination(err);
  else destination.destroy(err);
}

/**
 * Copies a body from `source` to `destination` with back-pressure, and ends the destination
 * only when the source ended cleanly: a body cut off upstream must reach the next hop as a
 * broken transfer, never as a complete but short one. `done` is called once.
 *
 * Hand-made rather than stream.pipeline: this is the hot path of every scrape, and
 * pipeline's per-call AbortController and end-of-stream machinery showed up in profiles.
 * For the same reason the destination's listeners stay when it is done (`finished` guards
 * them). The source's go: Node keeps a closed HTTP/2 stream reachable from its native handle
 * until a full garbage collection, and through these listeners it kept the relay, the
 * scraper's response and the rest of the scrape (with 10,000 tunnels, most of what the proxy
 * promoted to old space).
 *
 * After the first chunk, the chunks that arrive in one turn of the event loop go out in one
 * write (the destination is corked until setImmediate): one write per 16 KiB frame was the
 * proxy's largest cost on large bodies. The first chunk, with the head, goes at once, so a
 * small scrape waits for nothing.
 */
export function relayBody(
  source: Readable,
  destination: Writable,
  options: RelayOptions,
  done: (err?: Error) => void,
): void {
  let finished = false;
  const finish = (err?: Error): void => {
    if (finished) return;
    finished = true;
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('close', onClose);
    source.off('error', onError);
    source.on('error', ignore);
    done(err);
  };
  const fail = (err: Error): void => {
    if (finished) return;
    if (options.abortSource) options.abortSource();
    else source.destroy();
    abortRelayDestination(destination, options, err);
    finish(err);
  };
  let chunks = 0;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    // end() uncorks by itself; a destroyed destination has nothing left to send.
    if (!destination.writableEnded && !destination.destroyed) destination.uncork();
  };
  const onData = (chunk: Buffer): void => {
    if (finished) return;
    const problem = options.inspect?.(chunk);
    if (problem) {
      fail(problem);
      return;
    }
    chunks += 1;
    if (chunks > 1 && !corked) {
      corked = true;
      destination.cork();
      setImmediate(uncork);
    }
    if (!writeWithRoom(destination, chunk)) source.pause();
  };
  const onEnd = (): void => {
    if (finished) return;
    if (options.endedCleanly && !options.endedCleanly()) {
      fail(new Error('the body was cut off'));
      return;
    }
    destination.end(() => finish());
  };
  const onError = (err: Error): void => fail(err);
  const onClose = (): void => {
    if (!source.readableEnded) fail(new Error('the body was cut off'));
  };
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
  destination.on('drain', () => {
    if (!finished) source.resume();
  });
  destination.on('close', () => {
    if (!destination.writableFinished) fail(new Error('the receiving side closed early'));
  });
  destination.on('error', ignore);
  // A source destroyed before the relay began (a reset that came with the head) emits
  // nothing more: without this, `done` would never be called.
  if (source.destroyed && !source.readableEnded) fail(new Error('the body was cut off'));
}
