import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Allowlist } from '../src/client/allowlist.js';
import { LocalTargets } from '../src/client/local-targets.js';
import { statusOf } from '../src/wire/failures.js';
import { FakeClock } from './helpers/fake-clock.js';

describe('a local fetch on fake time', () => {
  it('is refused with 504 exactly at its deadline, not a millisecond before', async (t) => {
    // A target that takes the request and never answers.
    let requests = 0;
    const target = http.createServer(() => {
      requests += 1;
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const { port } = target.address() as AddressInfo;
    const clock = new FakeClock();
    const targets = new LocalTargets(
      new Set(['demo']),
      new Allowlist([{ host: '127.0.0.1', port }]),
      clock,
    );
    t.after(() => {
      targets.close();
      target.closeAllConnections();
      target.close();
    });
    const refusals: Array<{ status: number; code: string }> = [];
    let refused!: () => void;
    const whenRefused = new Promise<void>((resolve) => {
      refused = resolve;
    });
    targets.fetch(
      {
        name: 'demo',
        port,
        method: 'GET',
        pathAndQuery: '/metrics',
        headers: {},
        authority: `demo:${port}`,
        deadlineMs: 10_000,
      },
      {
        refused: (code) => {
          refusals.push({ status: statusOf(code), code });
          refused();
        },
        cancelled: () => assert.fail('not cancelled'),
        response: () => assert.fail('the target never answers'),
      },
    );
    for (let i = 0; i < 200 && requests === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(requests, 1, 'the request reached the target');
    await clock.advance(9_999);
    assert.deepEqual(refusals, []);
    await clock.advance(1);
    // Fake time alone ends it: on real time it would take 10 s.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      whenRefused,
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('not refused on fake time')), 2000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(refusals, [{ status: 504, code: 'NATPROX_SCRAPE_TIMEOUT' }]);
  });
});
