import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Backoff,
  DEFAULT_BACKOFF,
  failureKind,
  type BackoffOptions,
} from '../src/client/backoff.js';
import { NatproxError } from '../src/errors.js';
import { FakeClock } from './helpers/fake-clock.js';

/** A random source that always returns `value`, so jitter is predictable. */
function fixed(value: number): () => number {
  return () => value;
}

function take(backoff: Backoff, count: number): number[] {
  return Array.from({ length: count }, () => backoff.next());
}

describe('Backoff', () => {
  it('defaults to 500 ms first, doubling, capped at 30 s (3 s while unreachable), 30% jitter', () => {
    assert.deepEqual(DEFAULT_BACKOFF, {
      initialMs: 500,
      maxMs: 30_000,
      unreachableMaxMs: 3000,
      multiplier: 2,
      jitter: 0.3,
    });
  });

  it('while the proxy is unreachable, no delay exceeds 3.9 s however long it was away', () => {
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.999999) });
    const delays = take(backoff, 30).map(() => backoff.next('unreachable'));
    assert.ok(Math.max(...delays) <= 3900, `max ${Math.max(...delays)} ms`);
    assert.equal(new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.5) }).next('unreachable'), 500);
  });

  it('a refusal after unreachable attempts grows on towards 30 s', () => {
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.5) });
    const unreachable = Array.from({ length: 6 }, () => backoff.next('unreachable'));
    assert.deepEqual(unreachable, [500, 1000, 2000, 3000, 3000, 3000]);
    assert.equal(backoff.next('refused'), 30_000);
  });

  it('failureKind: 4xx refusals wait long; no answer, 5xx, 408 and 429 retry soon', () => {
    const refusal = (status: number) =>
      new NatproxError('NATPROX_REGISTRATION_REJECTED', 'refused', { httpStatus: status });
    assert.equal(failureKind(refusal(401)), 'refused');
    assert.equal(failureKind(refusal(403)), 'refused');
    assert.equal(failureKind(refusal(400)), 'refused');
    assert.equal(failureKind(refusal(503)), 'unreachable');
    assert.equal(failureKind(refusal(429)), 'unreachable');
    assert.equal(failureKind(refusal(408)), 'unreachable');
    assert.equal(
      failureKind(new NatproxError('NATPROX_TUNNEL_FAILED', 'ECONNREFUSED')),
      'unreachable',
    );
    assert.equal(failureKind(new Error('socket hang up')), 'unreachable');
  });

  it('without jitter (random = 0.5) yields 500, 1000, 2000, ... capped at 30000', () => {
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.5) });
    assert.deepEqual(
      take(backoff, 10),
      [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000],
    );
  });

  it('the extremes of the random source give exactly -30% and +30%', () => {
    const low = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0) });
    assert.deepEqual(take(low, 8), [350, 700, 1400, 2800, 5600, 11_200, 21_000, 21_000]);
    // random() is < 1; 0.999999 approaches the upper bound.
    const high = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.999999) });
    assert.deepEqual(take(high, 8), [650, 1300, 2600, 5200, 10_400, 20_800, 39_000, 39_000]);
  });

  it('with Math.random, every delay stays within ±30% of its base and the spread is used', () => {
    const bases = [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000];
    const seen = bases.map(() => ({ min: Infinity, max: -Infinity }));
    for (let run = 0; run < 500; run += 1) {
      const backoff = new Backoff();
      bases.forEach((base, i) => {
        const delay = backoff.next();
        assert.ok(
          delay >= base * 0.7 && delay <= base * 1.3,
          `delay ${i} = ${delay} outside [${base * 0.7}, ${base * 1.3}]`,
        );
        const s = seen[i] as { min: number; max: number };
        s.min = Math.min(s.min, delay);
        s.max = Math.max(s.max, delay);
      });
    }
    // Jitter is really applied: over 500 runs both halves of the band are reached.
    bases.forEach((base, i) => {
      const s = seen[i] as { min: number; max: number };
      assert.ok(s.min < base * 0.9, `delay ${i}: min ${s.min} never went low`);
      assert.ok(s.max > base * 1.1, `delay ${i}: max ${s.max} never went high`);
    });
  });

  it('different random values give different delays (no lockstep)', () => {
    const values = new Set<number>();
    for (let i = 0; i < 50; i += 1) values.add(new Backoff().next());
    assert.ok(values.size > 10, `only ${values.size} distinct first delays`);
  });

  it('reset() starts again from the initial delay', () => {
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.5) });
    assert.deepEqual(take(backoff, 4), [500, 1000, 2000, 4000]);
    backoff.reset();
    assert.deepEqual(take(backoff, 3), [500, 1000, 2000]);
    // From the cap, too.
    take(backoff, 20);
    assert.equal(backoff.next(), 30_000);
    backoff.reset();
    assert.equal(backoff.next(), 500);
  });

  it('honours custom options (multiplier, cap, jitter 0)', () => {
    const options: BackoffOptions = { initialMs: 10, maxMs: 100, multiplier: 3, jitter: 0 };
    assert.deepEqual(take(new Backoff(options), 5), [10, 30, 90, 100, 100]);
  });

  it('never returns a negative delay, even with jitter above 100%', () => {
    const backoff = new Backoff({
      initialMs: 100,
      maxMs: 1000,
      multiplier: 2,
      jitter: 2,
      random: fixed(0),
    });
    assert.equal(backoff.next(), 0);
  });

  it('returns whole milliseconds', () => {
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.123456) });
    for (const delay of take(backoff, 10)) assert.ok(Number.isInteger(delay), `${delay}`);
  });

  it('a tunnel that stayed up resetAfterUpMs (on its clock) starts the delays over when it drops', async () => {
    const clock = new FakeClock();
    const backoff = new Backoff(
      { ...DEFAULT_BACKOFF, random: fixed(0.5) },
      { clock, resetAfterUpMs: 30_000 },
    );
    assert.deepEqual(take(backoff, 3), [500, 1000, 2000]);
    backoff.up();
    await clock.advance(29_999);
    backoff.down();
    assert.equal(backoff.next(), 4000, 'up 1 ms too short: no reset');
    backoff.up();
    await clock.advance(30_000);
    backoff.down();
    assert.equal(backoff.next(), 500);
  });

  it('without resetAfterUpMs, or a drop without an up, nothing resets', async () => {
    const clock = new FakeClock();
    const never = new Backoff({ ...DEFAULT_BACKOFF, random: fixed(0.5) }, { clock });
    take(never, 2);
    never.up();
    await clock.advance(3_600_000);
    never.down();
    assert.equal(never.next(), 2000);
    const timed = new Backoff(
      { ...DEFAULT_BACKOFF, random: fixed(0.5) },
      { clock, resetAfterUpMs: 10 },
    );
    take(timed, 2);
    await clock.advance(60_000);
    timed.down();
    assert.equal(timed.next(), 2000);
  });
});
