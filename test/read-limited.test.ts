import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { NatproxError } from '../src/errors.js';
import { readLimited } from '../src/util/read-limited.js';

/** A stream that gives `chunks` and then ends. */
const bodyOf = (...chunks: string[]): Readable =>
  Readable.from(chunks.map((chunk) => Buffer.from(chunk)));

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

describe('readLimited', () => {
  it('reads a body of exactly the limit, across chunks', async () => {
    const body = await readLimited(bodyOf('abc', 'de', 'fgh'), 8, { onOver: 'reject' });
    assert.equal(body.toString(), 'abcdefgh');
  });

  it('reads an empty body', async () => {
    assert.equal((await readLimited(bodyOf(), 8, { onOver: 'reject' })).length, 0);
  });

  it('rejects one byte over the limit with a coded error naming the limit, and destroys the stream', async () => {
    const stream = bodyOf('abc', 'de', 'fghi');
    const err = await rejection(readLimited(stream, 8, { onOver: 'reject', what: 'the answer' }));
    assert.ok(err instanceof NatproxError);
    assert.equal(err.code, 'NATPROX_BODY_TOO_LARGE');
    assert.equal(err.message, 'the answer is over the limit of 8 bytes');
    assert.equal(stream.destroyed, true);
  });

  it('truncates to exactly the limit, mid-chunk, and destroys the rest', async () => {
    const stream = bodyOf('abc', 'defghij', 'klm');
    const body = await readLimited(stream, 5, { onOver: 'truncate' });
    assert.equal(body.toString(), 'abcde');
    assert.equal(stream.destroyed, true);
  });

  it("drains what is past the limit: truncated, it resolves at the stream's end", async () => {
    const stream = new PassThrough();
    let resolved = false;
    const reading = readLimited(stream, 4, { onOver: 'truncate', rest: 'drain' }).then((body) => {
      resolved = true;
      return body;
    });
    stream.write('abcdef');
    stream.write('more');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(resolved, false, 'resolved before the end of the drain');
    assert.equal(stream.destroyed, false);
    stream.end('and the end');
    assert.equal((await reading).toString(), 'abcd');
    assert.equal(stream.readableEnded, true, 'read to its end');
  });

  it('drains what is past the limit: rejected, it rejects at once and reads on to the end', async () => {
    const stream = new PassThrough();
    const err = rejection(readLimited(stream, 4, { onOver: 'reject', rest: 'drain' }));
    stream.write('abcdef');
    assert.equal(((await err) as NatproxError).code, 'NATPROX_BODY_TOO_LARGE');
    assert.equal(stream.destroyed, false);
    stream.end('rest');
    await once(stream, 'end');
  });

  it("rejects with the stream's error", async () => {
    const stream = new PassThrough();
    const reading = readLimited(stream, 100, { onOver: 'reject' });
    stream.write('abc');
    stream.destroy(new Error('socket hang up'));
    assert.equal((await rejection(reading)).message, 'socket hang up');
  });

  it('rejects a stream destroyed before its end, saying how much arrived', async () => {
    const stream = new PassThrough();
    const reading = readLimited(stream, 100, { onOver: 'reject', what: 'the poll answer' });
    stream.write('abc');
    await new Promise((resolve) => setImmediate(resolve));
    stream.destroy();
    assert.equal((await rejection(reading)).message, 'the poll answer broke off after 3 bytes');
  });

  it('gives what arrived before a break when asked to', async () => {
    const stream = new PassThrough();
    const reading = readLimited(stream, 100, { onOver: 'truncate', onBreak: 'resolve' });
    stream.write('partial reason');
    await new Promise((resolve) => setImmediate(resolve));
    stream.destroy(new Error('reset'));
    assert.equal((await reading).toString(), 'partial reason');
  });

  it('reads string chunks as bytes (a stream with an encoding set)', async () => {
    const stream = bodyOf('héllo');
    stream.setEncoding('utf8');
    const body = await readLimited(stream, 6, { onOver: 'reject' });
    assert.equal(body.toString(), 'héllo');
  });
});
