import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientEvents, type ConnectionState } from '../src/client/client-events.js';
import { ReconnectLoop, type AttemptControl } from '../src/client/reconnect-loop.js';
import { NatproxError } from '../src/errors.js';
import { EXACT_BACKOFF, FakeClock, settle } from './helpers/fake-clock.js';

function summary(states: ConnectionState[]): string[] {
  return states.map((s) =>
    s.state === 'connecting'
      ? `connecting ${s.attempt}`
      : s.state === 'reconnecting'
        ? `reconnecting ${s.attempt} ${s.delayMs}`
        : s.state,
  );
}

describe('ReconnectLoop (the loop both client transports run)', () => {
  it('a proxy that took the attempt (connected) without a success keeps the attempt count and the backoff', async () => {
    const clock = new FakeClock();
    const events = new ClientEvents();
    const states: ConnectionState[] = [];
    events.on('state', (state) => states.push(state));
    let attempts = 0;
    let control: AttemptControl | undefined;
    let fail: ((err: Error) => void) | undefined;
    const loop = new ReconnectLoop({
      attempt: (given) => {
        attempts += 1;
        control = given;
        if (attempts <= 2) return Promise.reject(new Error(`refused ${attempts}`));
        return new Promise((_resolve, reject) => {
          fail = reject;
        });
      },
      events,
      backoff: EXACT_BACKOFF,
      tunnel: { proxy: 'p' },
      clock,
    });
    loop.start();
    await clock.advance(60);
    assert.equal(attempts, 3);
    control?.connected(); // as a PushProx poll held long enough
    control?.connected(); // announced once
    fail?.(new Error('poll broke off'));
    await settle();
    assert.deepEqual(summary(states), [
      'connecting 1',
      'reconnecting 2 20',
      'connecting 2',
      'reconnecting 3 40',
      'connecting 3',
      'connected',
      'reconnecting 4 80',
    ]);
    await loop.stop(async () => {});
    assert.equal(loop.state.state, 'closed');
  });

  it('up() and resetBackoff() after a success: the next failure waits the initial delay', async () => {
    const clock = new FakeClock();
    const events = new ClientEvents();
    const states: ConnectionState[] = [];
    events.on('state', (state) => states.push(state));
    let attempts = 0;
    const loop = new ReconnectLoop({
      attempt: async (control) => {
        attempts += 1;
        if (attempts <= 3) throw new Error(`refused ${attempts}`);
        // Two scrapes polled (each a success), then the poll fails.
        control.resetBackoff();
        control.up();
        control.resetBackoff();
        control.up();
        throw new Error('poll broke off');
      },
      events,
      backoff: EXACT_BACKOFF,
      tunnel: { proxy: 'p' },
      clock,
    });
    loop.start();
    await clock.advance(20 + 40 + 80);
    assert.deepEqual(summary(states).slice(-3), ['connecting 4', 'connected', 'reconnecting 2 20']);
    let signal: AbortSignal | undefined;
    await loop.stop(async () => {
      signal = loop.signal;
    });
    assert.ok(signal?.reason instanceof NatproxError);
    assert.equal(signal.reason.code, 'NATPROX_STOPPED');
    assert.equal(clock.pending, 0, 'the wait ended with the loop');
  });
});
