import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { DEFAULT_HEARTBEAT, Heartbeat, type Timers } from '../src/wire/heartbeat.js';

/** Fake interval timers: `tick()` fires every live interval once. */
class FakeTimers implements Timers {
  readonly intervals = new Map<object, { fn: () => void; ms: number }>();
  readonly cleared: unknown[] = [];
  unrefCalls = 0;

  setInterval(fn: () => void, ms: number): { unref(): unknown } {
    const handle = {
      unref: () => {
        this.unrefCalls += 1;
        return handle;
      },
    };
    this.intervals.set(handle, { fn, ms });
    return handle;
  }

  clearInterval(handle: unknown): void {
    this.cleared.push(handle);
    this.intervals.delete(handle as object);
  }

  tick(): void {
    for (const { fn } of [...this.intervals.values()]) fn();
  }
}

interface Harness {
  timers: FakeTimers;
  heartbeat: Heartbeat;
  /** Pong callbacks of pings not yet answered, oldest first. */
  pending: Array<() => void>;
  pings: () => number;
  deaths: number[];
}

function harness(
  intervalMs: number,
  maxMissed: number,
  extra: {
    passive?: boolean;
    pingWhileReceiving?: boolean;
    receivedSinceLastAsked?: () => boolean;
  } = {},
): Harness {
  const timers = new FakeTimers();
  const pending: Array<() => void> = [];
  let pings = 0;
  const deaths: number[] = [];
  const heartbeat = new Heartbeat(
    (onPong) => {
      pings += 1;
      pending.push(onPong);
    },
    (silentMs) => deaths.push(silentMs),
    {
      intervalMs,
      maxMissed,
      timers,
      ...(extra.passive ? { passive: true } : {}),
      ...(extra.pingWhileReceiving ? { pingWhileReceiving: true } : {}),
    },
    extra.receivedSinceLastAsked,
  );
  return { timers, heartbeat, pending, pings: () => pings, deaths };
}

function answerAll(h: Harness): void {
  for (const pong of h.pending.splice(0)) pong();
}

describe('Heartbeat', () => {
  it('defaults to a 4 s interval and 2 missed pings', () => {
    assert.deepEqual(DEFAULT_HEARTBEAT, { intervalMs: 4000, maxMissed: 2 });
  });

  it('schedules one interval of intervalMs, unref-ed, and sends nothing before the first tick', () => {
    const h = harness(1234, 2);
    h.heartbeat.start();
    assert.equal(h.timers.intervals.size, 1);
    assert.equal([...h.timers.intervals.values()][0]?.ms, 1234);
    assert.equal(h.timers.unrefCalls, 1);
    assert.equal(h.pings(), 0);
  });

  it('sends exactly one ping per interval', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    for (let i = 1; i <= 5; i += 1) {
      h.timers.tick();
      assert.equal(h.pings(), i);
      answerAll(h);
    }
  });

  it('a peer that always answers stays alive for 100 intervals', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    for (let i = 0; i < 100; i += 1) {
      h.timers.tick();
      answerAll(h);
    }
    assert.equal(h.pings(), 100);
    assert.deepEqual(h.deaths, []);
    assert.equal(h.timers.intervals.size, 1);
  });

  it('a peer that answers late but within maxMissed ticks stays alive', () => {
    // Answer only every second ping: one missed tick at a time never reaches maxMissed = 2.
    const h = harness(1000, 2);
    h.heartbeat.start();
    for (let i = 0; i < 100; i += 1) {
      h.timers.tick();
      if (i % 2 === 1) answerAll(h);
    }
    assert.deepEqual(h.deaths, []);
    assert.equal(h.pings(), 100);
  });

  it('other traffic reported through alive() counts as an answer', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    for (let i = 0; i < 50; i += 1) {
      h.timers.tick();
      h.heartbeat.alive(); // pongs never arrive, but data does
    }
    assert.deepEqual(h.deaths, []);
  });

  for (const maxMissed of [1, 2, 3, 5]) {
    it(`with maxMissed = ${maxMissed}, a silent peer is declared dead after ${maxMissed} missed pings, not before`, () => {
      const h = harness(1000, maxMissed);
      h.heartbeat.start();
      // First tick sends the first ping; each later tick finds the previous one unanswered.
      for (let tick = 1; tick <= maxMissed; tick += 1) {
        h.timers.tick();
        assert.deepEqual(h.deaths, [], `dead too early, at tick ${tick}`);
        assert.equal(h.pings(), tick);
      }
      h.timers.tick();
      assert.deepEqual(h.deaths, [maxMissed * 1000]);
      assert.equal(h.pings(), maxMissed, 'no ping is sent on the tick that declares death');
      assert.equal(h.timers.intervals.size, 0, 'the interval is cleared on death');
    });
  }

  it('a peer that stops answering after a long healthy period dies maxMissed ticks later', () => {
    const h = harness(500, 2);
    h.heartbeat.start();
    for (let i = 0; i < 20; i += 1) {
      h.timers.tick();
      answerAll(h);
    }
    h.timers.tick(); // ping 21, never answered
    h.timers.tick(); // missed 1
    assert.deepEqual(h.deaths, []);
    h.timers.tick(); // missed 2
    assert.deepEqual(h.deaths, [1000]);
  });

  it('one answer resets the missed count', () => {
    const h = harness(1000, 3);
    h.heartbeat.start();
    h.timers.tick(); // ping 1
    h.timers.tick(); // missed 1
    h.timers.tick(); // missed 2
    answerAll(h);
    h.timers.tick(); // answered: reset
    h.timers.tick(); // missed 1
    h.timers.tick(); // missed 2
    assert.deepEqual(h.deaths, []);
    h.timers.tick(); // missed 3
    assert.deepEqual(h.deaths, [3000]);
  });

  it('a late answer after death does not revive the peer', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    h.timers.tick();
    h.timers.tick();
    h.timers.tick();
    assert.equal(h.deaths.length, 1);
    const pingsAtDeath = h.pings();
    answerAll(h);
    h.heartbeat.alive();
    for (let i = 0; i < 10; i += 1) h.timers.tick();
    assert.equal(h.deaths.length, 1, 'onDead is called once');
    assert.equal(h.pings(), pingsAtDeath, 'no ping after death');
    assert.equal(h.timers.intervals.size, 0);
  });

  it('stop() clears the interval it started, so no more pings or deaths', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    const [handle] = [...h.timers.intervals.keys()];
    h.timers.tick();
    h.heartbeat.stop();
    assert.deepEqual(h.timers.cleared, [handle]);
    assert.equal(h.timers.intervals.size, 0);
    for (let i = 0; i < 10; i += 1) h.timers.tick();
    assert.equal(h.pings(), 1);
    assert.deepEqual(h.deaths, []);
    h.heartbeat.stop(); // idempotent
    assert.equal(h.timers.cleared.length, 1);
  });

  it('stop() before start() does nothing', () => {
    const h = harness(1000, 2);
    h.heartbeat.stop();
    assert.deepEqual(h.timers.cleared, []);
  });

  it('works with real timers (mocked by node:test) when none are injected', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const ping = mock.fn<(onPong: () => void) => void>();
    const onDead = mock.fn<(silentMs: number) => void>();
    const heartbeat = new Heartbeat(ping, onDead, { intervalMs: 4000, maxMissed: 2 });
    heartbeat.start();
    t.mock.timers.tick(3999);
    assert.equal(ping.mock.callCount(), 0);
    t.mock.timers.tick(1);
    assert.equal(ping.mock.callCount(), 1);
    t.mock.timers.tick(4000);
    assert.equal(ping.mock.callCount(), 2);
    assert.equal(onDead.mock.callCount(), 0);
    t.mock.timers.tick(4000);
    assert.equal(onDead.mock.callCount(), 1);
    assert.deepEqual(onDead.mock.calls[0]?.arguments, [8000]);
    assert.equal(ping.mock.callCount(), 2);
    // Not ticking further: Node 20's mocked setInterval ignores a clearInterval made from
    // inside its own callback (which is how death stops the heartbeat). The fake-Timers
    // tests above prove that nothing fires after death.
    heartbeat.stop();
  });

  it('with real (mocked) timers, stop() cancels future pings', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const ping = mock.fn<(onPong: () => void) => void>((onPong) => onPong());
    const heartbeat = new Heartbeat(ping, () => assert.fail('not dead'), {
      intervalMs: 1000,
      maxMissed: 2,
    });
    heartbeat.start();
    t.mock.timers.tick(3000);
    assert.equal(ping.mock.callCount(), 3);
    heartbeat.stop();
    t.mock.timers.tick(10_000);
    assert.equal(ping.mock.callCount(), 3);
  });
});

describe('Heartbeat on a busy tunnel', () => {
  it('sends no ping after an interval with traffic, and pings again once it is quiet', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    for (let i = 0; i < 10; i += 1) {
      h.heartbeat.alive(); // a scrape went through during this interval
      h.timers.tick();
    }
    assert.equal(h.pings(), 0, 'traffic proves liveness; no ping needed');
    h.timers.tick();
    assert.equal(h.pings(), 1, 'a quiet interval brings a ping');
    assert.deepEqual(h.deaths, []);
  });

  it('still declares a peer dead within maxMissed + 1 intervals of its last traffic', () => {
    const h = harness(1000, 2);
    h.heartbeat.start();
    h.heartbeat.alive();
    h.timers.tick(); // traffic seen: no ping
    h.timers.tick(); // quiet: missed 1, ping
    assert.deepEqual(h.deaths, []);
    h.timers.tick(); // ping unanswered: missed 2, dead
    assert.deepEqual(h.deaths, [2000]);
  });
});

describe('Heartbeat, passive (the proxy) and counting bytes', () => {
  function passive(receivedSinceLastAsked?: () => boolean): Harness {
    const h = harness(1000, 2, {
      passive: true,
      ...(receivedSinceLastAsked ? { receivedSinceLastAsked } : {}),
    });
    h.heartbeat.start();
    return h;
  }

  it('leaves the pinging to a peer that pings every interval, and never pings itself', () => {
    const h = passive();
    for (let i = 0; i < 50; i += 1) {
      h.heartbeat.alive(); // the client's ping arrived
      h.timers.tick();
    }
    assert.equal(h.pings(), 0);
    assert.deepEqual(h.deaths, []);
  });

  it('pings once a whole interval passed in silence, and a peer that answers stays', () => {
    const h = passive();
    h.timers.tick(); // the first interval counts as heard (just connected): no ping
    assert.equal(h.pings(), 0);
    for (let i = 0; i < 10; i += 1) {
      h.timers.tick(); // silent: missed 1, ping
      for (const pong of h.pending.splice(0)) pong();
    }
    assert.ok(h.pings() >= 5, `${h.pings()} pings`);
    assert.deepEqual(h.deaths, []);
  });

  it('declares a silent peer dead after maxMissed ticks, as the active side does', () => {
    const h = passive();
    h.heartbeat.alive();
    h.timers.tick(); // heard: missed 0
    h.timers.tick(); // silent: missed 1, ping (unanswered)
    assert.deepEqual(h.deaths, []);
    h.timers.tick(); // missed 2: dead
    assert.deepEqual(h.deaths, [2000]);
  });

  it('counts bytes reported at the tick as a sign of life', () => {
    let arrived = true;
    const h = passive(() => arrived);
    for (let i = 0; i < 20; i += 1) h.timers.tick();
    assert.equal(h.pings(), 0);
    assert.deepEqual(h.deaths, []);
    arrived = false;
    h.timers.tick();
    h.timers.tick();
    assert.deepEqual(h.deaths, [2000], 'no bytes and no answer: dead');
  });

  it('pingWhileReceiving: bytes from the peer keep it alive while its pongs are late, and the pings go on', () => {
    // The client uploading a body on a slow line: its pings wait behind the body, while the
    // proxy's WINDOW_UPDATEs keep arriving.
    let received = true;
    const h = harness(1000, 2, {
      pingWhileReceiving: true,
      receivedSinceLastAsked: () => received,
    });
    h.heartbeat.start();
    for (let i = 0; i < 10; i++) h.timers.tick();
    assert.deepEqual(h.deaths, [], 'bytes from the peer prove it alive');
    assert.equal(h.pings(), 10, 'a ping every tick: the passive proxy hears from this side');
    // Nothing arrives any more and the pings stay unanswered: dead after maxMissed ticks.
    received = false;
    for (let i = 0; i < 3; i++) h.timers.tick();
    assert.deepEqual(h.deaths, [2000]);
  });
});
