import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dialTunnel } from '../src/client/native/tunnel-dialer.js';
import type { Timers } from '../src/wire/heartbeat.js';
import { startProxy } from './helpers/loopback.js';

const ROUNDS = 20;
const WAIT_MS = 5000;

/** Interval timers that fire only when the test says so: heartbeat ticks without wall time. */
class ManualTimers implements Timers {
  private readonly live = new Set<() => void>();

  setInterval(fn: () => void): object {
    const handle = { fn };
    this.live.add(fn);
    return handle;
  }

  clearInterval(handle: unknown): void {
    this.live.delete((handle as { fn: () => void }).fn);
  }

  get count(): number {
    return this.live.size;
  }

  tick(): void {
    for (const fn of [...this.live]) fn();
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('heartbeats on a real idle tunnel', () => {
  it('carry one ping per interval, from the client, and keep the tunnel up', async () => {
    // Each end's heartbeat ticks when the test ticks its timers: the same interval on both
    // ends, with the proxy's tick always after the client's ping of that interval arrived.
    const proxyTimers = new ManualTimers();
    const clientTimers = new ManualTimers();
    const { proxy, url } = await startProxy(after, {
      heartbeat: { intervalMs: 100, maxMissed: 2, timers: proxyTimers },
    });
    const tunnel = await dialTunnel({
      proxyUrl: new URL(url),
      registration: { names: ['idle'], labels: {}, ports: [9], version: 'test' },
      handshakeTimeoutMs: 5000,
      heartbeat: { intervalMs: 100, maxMissed: 2, timers: clientTimers },
      onStream: (stream) => stream.close(),
    });
    after(() => tunnel.destroy());
    await until('the proxy to run the tunnel', () => proxy.registry.lookup('idle') !== undefined);
    await until('both heartbeats to start', () => proxyTimers.count + clientTimers.count === 2);
    const session = tunnel.session;
    let fromProxy = 0;
    let fromClient = 0;
    session.on('ping', () => {
      fromProxy += 1;
    });
    // Count the client's own pings where its heartbeat sends them, and tell when answered.
    const ping = session.ping.bind(session);
    session.ping = ((callback: (err: Error | null) => void) => {
      fromClient += 1;
      return ping((err) => {
        callback(err);
        session.emit('test:pong');
      });
    }) as typeof session.ping;

    for (let round = 1; round <= ROUNDS; round += 1) {
      const pong = once(session, 'test:pong');
      clientTimers.tick();
      assert.equal(fromClient, round, `round ${round}: the client pinged`);
      await Promise.race([
        pong,
        sleep(WAIT_MS, undefined, { ref: false }).then(() =>
          assert.fail(`round ${round}: no pong`),
        ),
      ]);
      proxyTimers.tick();
    }
    // A ping the proxy sent at its last tick reaches the client before the answer to this one
    // (one connection, frames in order).
    await new Promise<void>((resolve, reject) => ping((err) => (err ? reject(err) : resolve())));

    // The proxy (one process for many tunnels) only answers: the client's pings prove the
    // client alive, so the proxy never pings a tunnel that spoke within the interval.
    assert.equal(fromProxy, 0, `the proxy sent ${fromProxy} pings in ${ROUNDS} intervals`);
    assert.equal(fromClient, ROUNDS, 'the client pinged once per interval');
    assert.equal(proxy.registry.lookup('idle')?.closed, false, 'the proxy still serves the tunnel');
    const state = await Promise.race([tunnel.closed, sleep(0, 'open')]);
    assert.equal(state, 'open', 'the client kept the tunnel');
  });
});
