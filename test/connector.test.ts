import assert from 'node:assert/strict';
import type { ServerHttp2Session } from 'node:http2';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientEvents, type ConnectionState } from '../src/client/client-events.js';
import type { BackoffOptions } from '../src/client/backoff.js';
import { Connector } from '../src/client/connector.js';
import type { TunnelConnection } from '../src/tunnel/tunnel-dialer.js';

/** No jitter: random() = 0.5 puts every delay exactly on its base. */
const SMALL_BACKOFF: BackoffOptions = {
  initialMs: 20,
  maxMs: 160,
  multiplier: 2,
  jitter: 0.3,
  random: () => 0.5,
};

/** A TunnelConnection without a socket: `drop()` ends it. */
class FakeConnection implements TunnelConnection {
  readonly session = {} as ServerHttp2Session;
  readonly closed: Promise<string>;
  /** Here the connection is gone as soon as it stops taking scrapes. */
  readonly finished: Promise<void>;
  closeCalls = 0;
  destroyCalls = 0;
  drop!: (reason: string) => void;

  constructor(private readonly closeEndsIt = true) {
    this.closed = new Promise((resolve) => {
      this.drop = resolve;
    });
    this.finished = this.closed.then(() => undefined);
  }

  close(): void {
    this.closeCalls += 1;
    if (this.closeEndsIt) this.drop('closed by us');
  }

  destroy(): void {
    this.destroyCalls += 1;
    this.drop('destroyed');
  }
}

function recorder(): { events: ClientEvents; states: ConnectionState[] } {
  const events = new ClientEvents();
  const states: ConnectionState[] = [];
  events.on('state', (state) => states.push(state));
  return { events, states };
}

function delays(states: ConnectionState[]): number[] {
  return states.flatMap((s) => (s.state === 'reconnecting' ? [s.delayMs] : []));
}

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await sleep(2);
  }
}

describe('Connector', () => {
  it('reconnects after failed dials with growing, capped delays, spaced in time', async () => {
    const { events, states } = recorder();
    const dialTimes: number[] = [];
    const connector = new Connector({
      dial: () => {
        dialTimes.push(performance.now());
        return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
      },
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 1000,
    });
    assert.deepEqual(connector.state, { state: 'connecting', attempt: 1 });
    connector.start();
    await waitFor(() => dialTimes.length >= 7);
    await connector.stop(0);

    const expected = [20, 40, 80, 160, 160, 160];
    assert.deepEqual(delays(states).slice(0, 6), expected);
    for (let i = 0; i < expected.length; i += 1) {
      const gap = (dialTimes[i + 1] as number) - (dialTimes[i] as number);
      // Timers may fire up to ~1 ms early relative to performance.now().
      assert.ok(
        gap >= (expected[i] as number) - 2,
        `gap ${i} was ${gap} ms, expected ≥ ${expected[i]}`,
      );
    }
    // Attempts count up and the last error is reported.
    const connecting = states.filter((s) => s.state === 'connecting');
    assert.deepEqual(
      connecting.slice(0, 4).map((s) => (s.state === 'connecting' ? s.attempt : 0)),
      [1, 2, 3, 4],
    );
    const firstRetry = states.find((s) => s.state === 'reconnecting');
    assert.deepEqual(firstRetry, {
      state: 'reconnecting',
      attempt: 2,
      delayMs: 20,
      lastError: 'connect ECONNREFUSED 127.0.0.1:1',
    });
    assert.deepEqual(states.at(-1), { state: 'closed' });
    assert.deepEqual(connector.state, { state: 'closed' });
  });

  it('counts the delay from the start of a dial that failed after waiting: a healed link is tried at once', async () => {
    const { events, states } = recorder();
    const dialTimes: number[] = [];
    const connector = new Connector({
      // Each dial hangs 150 ms and then fails, as a connect whose SYNs vanish times out.
      dial: async () => {
        dialTimes.push(performance.now());
        await sleep(150);
        throw new Error('no answer from 10.0.0.1:8080 within 150 ms');
      },
      events,
      backoff: { ...SMALL_BACKOFF, initialMs: 100, maxMs: 100 },
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    await waitFor(() => dialTimes.length >= 3);
    await connector.stop(0);
    // Before: 150 ms of dialing, then the whole 100 ms delay on top (a gap of 250 ms).
    const gap = (dialTimes[2] as number) - (dialTimes[1] as number);
    assert.ok(gap < 200, `the next dial started ${gap.toFixed(0)} ms after the last one`);
    assert.deepEqual(delays(states).slice(0, 2), [0, 0]);
  });

  it('start() twice runs one loop', async () => {
    const { events } = recorder();
    let dials = 0;
    const connector = new Connector({
      dial: () => {
        dials += 1;
        return Promise.reject(new Error('no'));
      },
      events,
      backoff: { ...SMALL_BACKOFF, initialMs: 10_000, maxMs: 10_000 },
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    connector.start();
    await sleep(30);
    assert.equal(dials, 1);
    await connector.stop(0);
  });

  it('does not reset the backoff when a connection drops quickly', async () => {
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    let dials = 0;
    const connector = new Connector({
      dial: async () => {
        dials += 1;
        if (dials <= 3) throw new Error(`fail ${dials}`);
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 10_000,
    });
    connector.start();
    await waitFor(() => connections.length === 1);
    assert.equal(connector.connection, connections[0]);
    assert.equal(connector.state.state, 'connected');
    connections[0]?.drop('peer went away');
    await waitFor(() => delays(states).length === 4);
    assert.equal(connector.connection, undefined);
    assert.deepEqual(delays(states), [20, 40, 80, 160]);
    const last = states.at(-1);
    assert.equal(last?.state, 'reconnecting');
    assert.equal(last?.state === 'reconnecting' ? last.lastError : '', 'peer went away');
    await connector.stop(0);
  });

  it('resets the backoff after the connection stayed up for resetBackoffAfterMs', async () => {
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    let dials = 0;
    const connector = new Connector({
      dial: async () => {
        dials += 1;
        if (dials <= 3) throw new Error(`fail ${dials}`);
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 50,
    });
    connector.start();
    await waitFor(() => connections.length === 1);
    await sleep(80); // stays up longer than resetBackoffAfterMs
    connections[0]?.drop('peer went away');
    await waitFor(() => delays(states).length === 4);
    assert.deepEqual(delays(states), [20, 40, 80, 20]);
    // After a drop the attempt counter starts again too.
    const last = states.at(-1);
    assert.deepEqual(last?.state === 'reconnecting' ? last.attempt : -1, 1);
    // And it reconnects: the next dial comes after the (reset) delay.
    await waitFor(() => connections.length === 2);
    await connector.stop(0);
    assert.equal(connections[1]?.closeCalls, 1);
  });

  it('stop() during a backoff wait ends the loop at once', async () => {
    const { events, states } = recorder();
    let dials = 0;
    const connector = new Connector({
      dial: () => {
        dials += 1;
        return Promise.reject(new Error('refused'));
      },
      events,
      backoff: { ...SMALL_BACKOFF, initialMs: 60_000, maxMs: 60_000 },
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    await waitFor(() => states.some((s) => s.state === 'reconnecting'));
    const started = performance.now();
    await connector.stop(0);
    assert.ok(performance.now() - started < 1000, 'stop() did not wait out the 60 s delay');
    await sleep(50);
    assert.equal(dials, 1);
    assert.deepEqual(states.at(-1), { state: 'closed' });
  });

  it('stop() while connected closes the connection gracefully and never redials', async () => {
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    const connector = new Connector({
      dial: async () => {
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    await waitFor(() => connections.length === 1);
    await connector.stop(1000);
    assert.equal(connections[0]?.closeCalls, 1);
    assert.equal(connections[0]?.destroyCalls, 0);
    await sleep(60);
    assert.equal(connections.length, 1);
    assert.ok(!states.some((s) => s.state === 'reconnecting'));
    assert.deepEqual(connector.state, { state: 'closed' });
  });

  it('stop() destroys a connection that does not close within the grace period', async () => {
    const { events } = recorder();
    const connection = new FakeConnection(false); // close() does not end it
    const connector = new Connector({
      dial: async () => connection,
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    await waitFor(() => connector.connection === connection);
    const started = performance.now();
    // The grace timer is unref-ed (a real tunnel's socket keeps the process alive); the fake
    // connection holds no handle, so keep the event loop alive for the test.
    const keepAlive = setInterval(() => {}, 1000);
    await connector.stop(40);
    clearInterval(keepAlive);
    const took = performance.now() - started;
    assert.equal(connection.closeCalls, 1);
    assert.equal(connection.destroyCalls, 1);
    assert.ok(took >= 35 && took < 1000, `stop took ${took} ms`);
  });

  it('stop() during a dial destroys the connection that arrives late and does not redial', async () => {
    const { events, states } = recorder();
    let release!: (connection: TunnelConnection) => void;
    let dials = 0;
    const connector = new Connector({
      dial: () => {
        dials += 1;
        return new Promise<TunnelConnection>((resolve) => {
          release = resolve;
        });
      },
      events,
      backoff: SMALL_BACKOFF,
      resetBackoffAfterMs: 1000,
    });
    connector.start();
    await waitFor(() => dials === 1);
    const stopped = connector.stop(0);
    const late = new FakeConnection();
    release(late);
    await stopped;
    assert.equal(late.destroyCalls, 1);
    assert.equal(connector.connection, undefined);
    assert.ok(!states.some((s) => s.state === 'connected'));
    await sleep(50);
    assert.equal(dials, 1);
  });
});
