import type { Readable, Writable } from 'node:stream';

export interface RelayOptions {
  /** Asked when the source ends: false means it was cut off (the end was not a real one). */
  endedCleanly?: () => boolean;
  /** Sees each chunk before it is written; an error returned stops the relay (limits). */
  inspect?: (chunk: Buffer) => Error | undefined;
  /** Tears the destination down when the relay fails (default: destroy it). */
  abortDestination?: (err: Error) => void;
}

/**
 * Copies a body from `source` to `destination` with back-pressure, and ends the destination
 * only when the source ended cleanly: a body cut off upstream must reach the next hop as a
 * broken transfer, never as a complete but short one. `done` is called once.
 *
 * Hand-made rather than stream.pipeline: this is the hot path of every scrape, and
 * pipeline's per-call AbortController and end-of-stream machinery showed up in profiles.
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
    destination.off('drain', onDrain);
    destination.off('close', onDestinationClose);
    done(err);
  };
  const fail = (err: Error): void => {
    if (finished) return;
    source.destroy();
    if (options.abortDestination) options.abortDestination(err);
    else destination.destroy(err);
    finish(err);
  };
  const onData = (chunk: Buffer): void => {
    const problem = options.inspect?.(chunk);
    if (problem) {
      fail(problem);
      return;
    }
    if (!destination.write(chunk)) source.pause();
  };
  const onDrain = (): void => {
    source.resume();
  };
  const onDestinationClose = (): void => {
    if (!destination.writableFinished) fail(new Error('the receiving side closed early'));
  };
  source.on('data', onData);
  source.once('end', () => {
    if (finished) return;
    if (options.endedCleanly && !options.endedCleanly()) {
      fail(new Error('the body was cut off'));
      return;
    }
    destination.end(() => finish());
  });
  source.once('error', (err: Error) => fail(err));
  source.once('close', () => {
    if (!source.readableEnded) fail(new Error('the body was cut off'));
  });
  destination.on('drain', onDrain);
  destination.once('close', onDestinationClose);
  destination.on('error', () => {});
}
