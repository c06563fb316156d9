import assert from 'node:assert/strict';
import type { ServerHttp2Session } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { ClientEvents, type ConnectionState } from '../src/client/client-events.js';
import { NatproxClient } from '../src/client/natprox-client.js';
import { NativeClientTransport } from '../src/client/native/native-client-transport.js';
import type { TunnelConnection } from '../src/client/native/tunnel-dialer.js';
import { NatproxError } from '../src/errors.js';
import { EXACT_BACKOFF, FakeClock, settle } from './helpers/fake-clock.js';

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

/** Lets the loop run until `condition`, moving fake time 1 ms at a time (bounded). */
async function waitFor(clock: FakeClock, condition: () => boolean, maxMs = 3000): Promise<void> {
  await settle();
  for (let ms = 0; !condition(); ms += 1) {
    if (ms > maxMs) throw new Error(`not within ${maxMs} ms of fake time`);
    await clock.advance(1);
  }
}

/** Waits `ms` of fake time, as a dial does; rejects when the client stops it first. */
function waitOrAbort(clock: FakeClock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clock.clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });
}

describe('NativeClientTransport', () => {
  it('reconnects after failed dials with growing, capped delays, spaced in time', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    const dialTimes: number[] = [];
    const transport = new NativeClientTransport({
      dial: () => {
        dialTimes.push(clock.now());
        return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
      },
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 1000,
      clock,
    });
    assert.deepEqual(transport.state, { state: 'connecting', attempt: 1 });
    transport.start();
    await waitFor(clock, () => dialTimes.length >= 7);
    await transport.stop(0);

    const expected = [20, 40, 80, 160, 160, 160];
    assert.deepEqual(delays(states).slice(0, 6), expected);
    // Each dial comes exactly its delay after the one before.
    const gaps = dialTimes.slice(1, 7).map((at, i) => at - (dialTimes[i] as number));
    assert.deepEqual(gaps, expected);
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
    assert.deepEqual(transport.state, { state: 'closed' });
  });

  /**
   * Three dials that each fail after `failAfterMs` of fake time, with a 100 ms backoff:
   * the gaps between the dials' starts and the delays the states announced.
   */
  async function failingDials(
    failAfterMs: number,
    error: string,
  ): Promise<{ gaps: number[]; delays: number[] }> {
    const clock = new FakeClock();
    const { events, states } = recorder();
    const dialTimes: number[] = [];
    const transport = new NativeClientTransport({
      dial: async (signal) => {
        dialTimes.push(clock.now());
        await waitOrAbort(clock, failAfterMs, signal);
        throw new Error(error);
      },
      events,
      backoff: { ...EXACT_BACKOFF, initialMs: 100, maxMs: 100 },
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => dialTimes.length >= 3);
    await transport.stop(0);
    return {
      gaps: dialTimes.slice(1, 3).map((at, i) => at - (dialTimes[i] as number)),
      delays: delays(states).slice(0, 2),
    };
  }

  it('counts the delay from the start of a dial that failed after waiting: a healed link is tried at once', async () => {
    // Each dial hangs 150 ms and then fails, as a connect whose SYNs vanish times out.
    // Before: 150 ms of dialing, then the whole 100 ms delay on top (a gap of 250 ms).
    const { gaps, delays: announced } = await failingDials(
      150,
      'no answer from 10.0.0.1:8080 within 150 ms',
    );
    assert.deepEqual(gaps, [150, 150]);
    assert.deepEqual(announced, [0, 0]);
  });

  it('a dial refused at once waits its whole delay', async () => {
    const { gaps, delays: announced } = await failingDials(
      99,
      'connect ECONNREFUSED 10.0.0.1:8080',
    );
    assert.deepEqual(gaps, [199, 199]);
    assert.deepEqual(announced, [100, 100]);
  });

  it('start() twice runs one loop', async () => {
    const clock = new FakeClock();
    const { events } = recorder();
    let dials = 0;
    const transport = new NativeClientTransport({
      dial: () => {
        dials += 1;
        return Promise.reject(new Error('no'));
      },
      events,
      backoff: { ...EXACT_BACKOFF, initialMs: 10_000, maxMs: 10_000 },
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    transport.start();
    await clock.advance(9_999);
    assert.equal(dials, 1);
    await clock.advance(1);
    assert.equal(dials, 2);
    await transport.stop(0);
  });

  it('does not reset the backoff when a connection drops quickly', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    let dials = 0;
    const transport = new NativeClientTransport({
      dial: async () => {
        dials += 1;
        if (dials <= 3) throw new Error(`fail ${dials}`);
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 10_000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => connections.length === 1);
    assert.equal(transport.connection, connections[0]);
    assert.equal(transport.state.state, 'connected');
    await clock.advance(9_999);
    connections[0]?.drop('peer went away');
    await waitFor(clock, () => delays(states).length === 4);
    assert.equal(transport.connection, undefined);
    assert.deepEqual(delays(states), [20, 40, 80, 160]);
    const last = states.at(-1);
    assert.equal(last?.state, 'reconnecting');
    assert.equal(last?.state === 'reconnecting' ? last.lastError : '', 'peer went away');
    await transport.stop(0);
  });

  it('resets the backoff after the connection stayed up for resetBackoffAfterMs', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    let dials = 0;
    const transport = new NativeClientTransport({
      dial: async () => {
        dials += 1;
        if (dials <= 3) throw new Error(`fail ${dials}`);
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 50,
      clock,
    });
    transport.start();
    await waitFor(clock, () => connections.length === 1);
    await clock.advance(50); // stays up exactly resetBackoffAfterMs
    connections[0]?.drop('peer went away');
    await waitFor(clock, () => delays(states).length === 4);
    assert.deepEqual(delays(states), [20, 40, 80, 20]);
    // After a drop the attempt counter starts again too.
    const last = states.at(-1);
    assert.deepEqual(last?.state === 'reconnecting' ? last.attempt : -1, 1);
    // And it reconnects: the next dial comes after the (reset) delay.
    await clock.advance(19);
    assert.equal(connections.length, 1);
    await clock.advance(1);
    assert.equal(connections.length, 2);
    await transport.stop(0);
    assert.equal(connections[1]?.closeCalls, 1);
  });

  it('stop() during a backoff wait ends the loop at once', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    let dials = 0;
    const transport = new NativeClientTransport({
      dial: () => {
        dials += 1;
        return Promise.reject(new Error('refused'));
      },
      events,
      backoff: { ...EXACT_BACKOFF, initialMs: 60_000, maxMs: 60_000 },
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => states.some((s) => s.state === 'reconnecting'));
    await transport.stop(0);
    // The wait's timer is gone with it: however long it would have been, nothing dials.
    assert.equal(clock.pending, 0);
    await clock.advance(120_000);
    assert.equal(dials, 1);
    assert.deepEqual(states.at(-1), { state: 'closed' });
  });

  it('stop() while connected closes the connection gracefully and never redials', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    const connections: FakeConnection[] = [];
    const transport = new NativeClientTransport({
      dial: async () => {
        const connection = new FakeConnection();
        connections.push(connection);
        return connection;
      },
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => connections.length === 1);
    await transport.stop(1000);
    assert.equal(connections[0]?.closeCalls, 1);
    assert.equal(connections[0]?.destroyCalls, 0);
    await clock.advance(10_000);
    assert.equal(connections.length, 1);
    assert.ok(!states.some((s) => s.state === 'reconnecting'));
    assert.deepEqual(transport.state, { state: 'closed' });
  });

  it('stop() destroys a connection that does not close within the grace period', async () => {
    const clock = new FakeClock();
    const { events } = recorder();
    const connection = new FakeConnection(false); // close() does not end it
    const transport = new NativeClientTransport({
      dial: async () => connection,
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => transport.connection === connection);
    let stopped = false;
    const stopping = transport.stop(40).then(() => {
      stopped = true;
    });
    await clock.advance(39);
    assert.equal(connection.closeCalls, 1);
    assert.equal(connection.destroyCalls, 0);
    assert.equal(stopped, false);
    await clock.advance(1);
    await stopping;
    assert.equal(connection.destroyCalls, 1);
  });

  it('stop() during a dial destroys the connection that arrives late and does not redial', async () => {
    const clock = new FakeClock();
    const { events, states } = recorder();
    let release!: (connection: TunnelConnection) => void;
    let dials = 0;
    let dialSignal: AbortSignal | undefined;
    const transport = new NativeClientTransport({
      // A dial that does not heed its signal: the connection still arrives, and is closed.
      dial: (signal) => {
        dials += 1;
        dialSignal = signal;
        return new Promise<TunnelConnection>((resolve) => {
          release = resolve;
        });
      },
      events,
      backoff: EXACT_BACKOFF,
      resetBackoffAfterMs: 1000,
      clock,
    });
    transport.start();
    await waitFor(clock, () => dials === 1);
    const stopped = transport.stop(0);
    // The dial is told why: the client is stopping.
    assert.ok(dialSignal?.reason instanceof NatproxError);
    assert.equal(dialSignal.reason.code, 'NATPROX_STOPPED');
    const late = new FakeConnection();
    release(late);
    await stopped;
    assert.equal(late.destroyCalls, 1);
    assert.equal(transport.connection, undefined);
    assert.ok(!states.some((s) => s.state === 'connected'));
    await clock.advance(10_000);
    assert.equal(dials, 1);
  });
});

/** A "proxy" that takes TCP connections and never says a byte; closed after the test. */
async function silentProxy(t: TestContext): Promise<{ port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, sockets };
}

/**
 * Stops `client` once it has dialled the silent proxy: stop() must not wait for the dial's
 * handshake timeout (10 s by default). 2 s leaves a loaded machine room and still tells.
 */
async function assertStopsDuringDial(client: NatproxClient, sockets: Set<Socket>): Promise<void> {
  for (let i = 0; i < 400 && sockets.size === 0; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(sockets.size, 1, 'the client dialled');
  assert.equal(client.state.state, 'connecting');
  const started = performance.now();
  await client.stop(0);
  const took = performance.now() - started;
  assert.ok(took < 2000, `stop() took ${took.toFixed(0)} ms`);
  assert.equal(client.state.state, 'closed');
}

describe('NatproxClient against a proxy that never answers', () => {
  it('waitConnected() rejects with NATPROX_TUNNEL_FAILED and the state of each tunnel', async (t) => {
    const { port } = await silentProxy(t);
    const client = new NatproxClient({
      proxyUrl: new URL(`http://127.0.0.1:${port}`),
      names: ['demo'],
      allow: [],
    });
    client.start();
    t.after(() => client.stop(0));
    await assert.rejects(
      client.waitConnected(50),
      (err: unknown) =>
        err instanceof NatproxError &&
        err.code === 'NATPROX_TUNNEL_FAILED' &&
        err.message === `not connected within 50 ms (127.0.0.1:${port}: connecting)`,
    );
  });

  it('returns at once when the proxy accepts TCP and never answers', async (t) => {
    const { port, sockets } = await silentProxy(t);
    const client = new NatproxClient({
      proxyUrl: new URL(`http://127.0.0.1:${port}`),
      names: ['demo'],
      allow: [],
    });
    client.start();
    await assertStopsDuringDial(client, sockets);
  });

  it('a PushProx client pinning the proxy certificate stops at once during the TLS handshake', async (t) => {
    const { port, sockets } = await silentProxy(t);
    const client = new NatproxClient({
      proxyUrl: new URL(`https://127.0.0.1:${port}`),
      tls: { pinSha256: 'ab'.repeat(32) },
      transport: 'pushprox',
      names: ['demo'],
      allow: [],
    });
    client.start();
    await assertStopsDuringDial(client, sockets);
  });
});
