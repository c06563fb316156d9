/**
 * The client's connections to local targets (src/client/target-pool.ts), through real
 * LocalTargets fetches against real targets: at most MAX_CONNECTIONS_PER_ORIGIN connections
 * per target, fetches beyond that wait for one to come free, and an idle connection closes
 * a second before the target's Keep-Alive timeout.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Allowlist } from '../src/client/allowlist.js';
import { LocalTargets } from '../src/client/local-targets.js';
import { MAX_CONNECTIONS_PER_ORIGIN } from '../src/client/target-pool.js';
import { countingTarget, eventually, within } from './helpers/loopback.js';

/** Fetches `path` from the target on `port`; resolves with the status and body. */
function fetchThrough(
  targets: LocalTargets,
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    targets.fetch(
      {
        name: 'demo',
        port,
        method: 'GET',
        pathAndQuery: path,
        headers: {},
        authority: `demo:${port}`,
        deadlineMs: 10_000,
      },
      {
        refused: (code, reason) => reject(new Error(`${code}: ${reason}`)),
        cancelled: () => reject(new Error('cancelled')),
        response: (response) => {
          const chunks: Buffer[] = [];
          const sink = new Writable({
            write(chunk: Buffer, _encoding, done) {
              chunks.push(chunk);
              done();
            },
          });
          response.relay(sink, {}, (err) => {
            if (err) reject(err);
            else resolve({ status: response.statusCode, body: Buffer.concat(chunks).toString() });
          });
        },
      },
    );
  });
}

function localTargets(port: number): LocalTargets {
  const targets = new LocalTargets(new Set(['demo']), new Allowlist([{ host: '127.0.0.1', port }]));
  after(() => targets.close());
  return targets;
}

describe('connections to a local target', () => {
  it(`are at most ${MAX_CONNECTIONS_PER_ORIGIN}; a fetch beyond waits for one to come free`, async () => {
    const held: Array<() => void> = [];
    const target = await countingTarget(after, (req, res) => {
      if (req.url === '/hold') held.push(() => res.end('held\n'));
      else res.end('quick\n');
    });
    const targets = localTargets(target.port);
    const holding = Array.from({ length: MAX_CONNECTIONS_PER_ORIGIN }, () =>
      fetchThrough(targets, target.port, '/hold'),
    );
    await eventually(
      () => held.length === MAX_CONNECTIONS_PER_ORIGIN,
      10_000,
      'every held request to reach the target',
    );
    let waitingDone = false;
    const waiting = fetchThrough(targets, target.port, '/quick').finally(() => {
      waitingDone = true;
    });
    // The next fetch can only be sent once a connection is free: release one.
    assert.equal(target.opened(), MAX_CONNECTIONS_PER_ORIGIN);
    assert.equal(waitingDone, false);
    held.shift()?.();
    assert.deepEqual(await within(waiting, 5000, 'the waiting fetch'), {
      status: 200,
      body: 'quick\n',
    });
    assert.equal(target.opened(), MAX_CONNECTIONS_PER_ORIGIN, 'it reused a connection');
    for (const release of held) release();
    const answers = await within(Promise.all(holding), 10_000, 'the held fetches');
    assert.ok(answers.every((answer) => answer.body === 'held\n'));
  });

  it("closes an idle connection a second before the target's Keep-Alive timeout", async () => {
    const target = await countingTarget(after, (req, res) => {
      // timeout=2: the pool keeps the connection for 1 s; timeout=1 leaves it no time at all.
      res.setHeader('keep-alive', req.url === '/short' ? 'timeout=1' : 'timeout=2');
      res.end('metric 1\n');
    });
    const targets = localTargets(target.port);
    await fetchThrough(targets, target.port, '/two-seconds');
    await fetchThrough(targets, target.port, '/two-seconds');
    assert.equal(target.opened(), 1, 'the connection was reused within the second');
    const idleSince = Date.now();
    await eventually(() => target.open.size === 0, 3000, 'the idle connection to close');
    const idleMs = Date.now() - idleSince;
    assert.ok(idleMs >= 800, `closed after ${idleMs} ms, before the second was over`);

    await fetchThrough(targets, target.port, '/short');
    await eventually(() => target.open.size === 0, 1000, 'the connection to close at once');
    await fetchThrough(targets, target.port, '/short');
    assert.equal(
      target.opened(),
      3,
      'a connection the target closes within a second is not reused',
    );
  });

  it('refuses a fetch after the last client closed them, at once (not at its deadline)', async () => {
    const target = await countingTarget(after, (_req, res) => res.end('metric 1\n'));
    const targets = localTargets(target.port);
    targets.close();
    await assert.rejects(
      within(fetchThrough(targets, target.port, '/metrics'), 2000, 'the refusal'),
      /NATPROX_TARGET_FAILED: .*closing its local connections/,
    );
    assert.equal(target.opened(), 0);
  });
});
