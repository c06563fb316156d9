import type { Readable } from 'node:stream';
import { NatproxError } from '../errors.js';

export interface ReadLimitedOptions {
  /**
   * Past `maxBytes`: 'reject' fails with NATPROX_BODY_TOO_LARGE (a body that big is not what
   * was asked for), 'truncate' keeps the first `maxBytes` bytes (a reason or error text,
   * where the start says enough).
   */
  onOver: 'reject' | 'truncate';
  /**
   * What becomes of the bytes past the limit: 'destroy' the stream (the default: nothing
   * more is wanted from it), or 'drain' it, reading on to its end and dropping what comes,
   * so that the request or connection it belongs to can finish (a refused upload, a push
   * whose answer must still be sent, a keep-alive connection). A truncated read resolves at
   * the end of the drain, a rejected one at once.
   */
  rest?: 'destroy' | 'drain';
  /**
   * A stream that breaks off (an error, or 'close' before 'end'): 'reject' (the default)
   * fails with the stream's error or says how much arrived; 'resolve' gives what arrived
   * (a reason text, where part of it still helps).
   */
  onBreak?: 'reject' | 'resolve';
  /** Names the body in messages, e.g. "the poll answer" (default "the body"). */
  what?: string;
}

/**
 * Reads `stream` into one Buffer of at most `maxBytes` (exactly `maxBytes` is within the
 * limit). One reader for every body natprox takes into memory whole, so each of them is
 * bounded the same way and fails the same way.
 */
export function readLimited(
  stream: Readable,
  maxBytes: number,
  options: ReadLimitedOptions,
): Promise<Buffer> {
  const what = options.what ?? 'the body';
  const drain = options.rest === 'drain';
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
    };
    const kept = (): Buffer => Buffer.concat(chunks, size);
    const onData = (data: Buffer | string): void => {
      if (over) return;
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      if (size + chunk.length <= maxBytes) {
        chunks.push(chunk);
        size += chunk.length;
        return;
      }
      over = true;
      if (options.onOver === 'truncate') {
        chunks.push(chunk.subarray(0, maxBytes - size));
        size = maxBytes;
        if (!drain) settle(() => resolve(kept()));
      } else {
        settle(() =>
          reject(
            new NatproxError(
              'NATPROX_BODY_TOO_LARGE',
              `${what} is over the limit of ${maxBytes} bytes`,
            ),
          ),
        );
      }
      if (!drain) {
        stream.off('data', onData);
        stream.destroy();
      }
    };
    const brokeOff = (err?: Error): void =>
      settle(() => {
        if (options.onBreak === 'resolve') resolve(kept());
        else reject(err ?? new Error(`${what} broke off after ${size} bytes`));
      });
    stream.on('data', onData);
    stream.once('end', () => settle(() => resolve(kept())));
    stream.on('error', brokeOff);
    stream.once('close', () => {
      if (!stream.readableEnded) brokeOff();
    });
  });
}
