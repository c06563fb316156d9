import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ignore } from '../src/util/ignore.js';
import { RELAY_ROOM_BYTES, relayBody, writeWithRoom } from '../src/util/relay-body.js';

const KIB = 1024;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A source the test pushes into by hand, so it decides which chunks share a turn. */
function handSource(): Readable {
  return new Readable({ read() {} });
}

/** Records how many chunks each write to it carried (writev: several at once). */
function recordingDestination(): { destination: Writable; writes: number[] } {
  const writes: number[] = [];
  const destination = new Writable({
    write(_chunk, _encoding, callback) {
      writes.push(1);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.length);
      callback();
    },
  });
  return { destination, writes };
}

/** Holds every write until `release()`: a receiver that does not read. */
function stalledDestination(): { destination: Writable; release: () => void } {
  const held: Array<() => void> = [];
  const destination = new Writable({
    write(_chunk, _encoding, callback) {
      held.push(callback);
    },
    writev(_chunks, callback) {
      held.push(callback);
    },
  });
  const release = (): void => {
    // Completing one write may start the next (buffered) one, which holds again.
    while (held.length > 0) held.shift()?.();
  };
  return { destination, release };
}

describe('relayBody', () => {
  it('writes the first chunk at once and the chunks of one later turn in one write', async () => {
    const source = handSource();
    const { destination, writes } = recordingDestination();
    let result: Error | undefined | 'pending' = 'pending';
    relayBody(source, destination, {}, (err) => {
      result = err;
    });
    await turn(); // the source starts flowing

    source.push(Buffer.alloc(10 * KIB, 'a'));
    assert.deepEqual(writes, [1], 'the first chunk (the head goes with it) waited');
    source.push(Buffer.alloc(16 * KIB, 'b'));
    source.push(Buffer.alloc(16 * KIB, 'c'));
    source.push(Buffer.alloc(16 * KIB, 'd'));
    assert.deepEqual(writes, [1], 'later chunks are held for the rest of the turn');
    await turn();
    assert.deepEqual(writes, [1, 3]);

    source.push(Buffer.alloc(16 * KIB, 'e'));
    source.push(Buffer.alloc(16 * KIB, 'f'));
    source.push(null);
    await turn();
    assert.deepEqual(writes, [1, 3, 2]);
    assert.equal(result, undefined, 'the relay did not finish cleanly');
    assert.equal(destination.writableFinished, true);
  });

  it('pauses the source only once the destination holds RELAY_ROOM_BYTES, resumes on drain', async () => {
    const source = handSource();
    const { destination, release } = stalledDestination();
    relayBody(source, destination, {}, () => {});
    await turn();

    const chunk = Buffer.alloc(64 * KIB, 'x');
    const fits = RELAY_ROOM_BYTES / chunk.length - 1;
    for (let i = 0; i < fits; i += 1) source.push(chunk);
    assert.equal(destination.writableNeedDrain, true, 'Node reports the destination full');
    assert.equal(source.isPaused(), false, `paused with ${fits * 64} KiB waiting`);

    source.push(chunk);
    assert.equal(source.isPaused(), true, `not paused with ${(fits + 1) * 64} KiB waiting`);

    // Let the held writes complete until the destination drains.
    for (let i = 0; i < 5 && destination.writableLength > 0; i += 1) {
      release();
      await turn();
    }
    assert.equal(destination.writableLength, 0);
    assert.equal(source.isPaused(), false, 'the source stayed paused after the drain');
  });

  it('fails at once for a source destroyed before it began, and tears the destination down', () => {
    const source = handSource();
    source.destroy();
    const { destination } = recordingDestination();
    let result: Error | undefined | 'pending' = 'pending';
    relayBody(source, destination, {}, (err) => {
      result = err;
    });
    assert.match(String(result), /cut off/);
    assert.equal(destination.destroyed, true);
  });

  it('leaves no listener of its own on the source once done (only a shared no-op for errors)', async () => {
    const source = handSource();
    const { destination } = recordingDestination();
    let finished = false;
    relayBody(source, destination, {}, () => {
      finished = true;
    });
    await turn();
    source.push(Buffer.from('body'));
    source.push(null);
    for (let i = 0; i < 5 && !finished; i += 1) await turn();
    assert.equal(finished, true);
    for (const event of ['data', 'end', 'close'])
      assert.equal(source.listenerCount(event), 0, event);
    assert.deepEqual(source.listeners('error'), [ignore]);
  });

  it('writeWithRoom: false only when the destination holds RELAY_ROOM_BYTES or more', () => {
    const { destination } = stalledDestination();
    const chunk = Buffer.alloc(RELAY_ROOM_BYTES / 2);
    assert.equal(writeWithRoom(destination, chunk), true, 'half the room used');
    assert.equal(writeWithRoom(destination, chunk), false, 'the whole room used');
  });
});
