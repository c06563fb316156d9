/**
 * A slow home line: 200 ms round trip, 2 Mbit/s upload, a router buffer of 64 KiB (a
 * relay in the VPS namespace shapes it; the kernel here has no netem). A 5 MiB body (a
 * federate answer) crosses it within its 30 s deadline, and a small scrape of node_exporter
 * on the same tunnel, sent while megabytes of the big body are on their way, is not queued
 * behind them: it completes within 2 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIG_PORT, Deployment, NODE_EXPORTER_PORT } from '../helpers/netns-deployment.js';
import type { AgentResult } from '../helpers/scrape-agent.js';

const BIG_BYTES = 5 * 1024 * 1024;
const UP_BYTES_PER_SECOND = 250_000; // 2 Mbit/s
const SMALL_WITHIN_MS = 2000;
const BIG_DEADLINE_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a slow home line: 200 ms RTT, 2 Mbit/s upload', () => {
  const d = new Deployment();

  async function step<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      console.error(`\n════ slow line: logs of every process ════\n${d.report()}\n`);
      throw err;
    }
  }

  before(() =>
    step(() =>
      d.start({
        bigBytes: BIG_BYTES,
        slowLine: {
          rttMs: 200,
          upBytesPerSecond: UP_BYTES_PER_SECOND,
          downBytesPerSecond: 10 * UP_BYTES_PER_SECOND,
          queueBytes: 64 * 1024,
        },
      }),
    ),
  );
  after(() => d.stop());

  it('a 5 MiB body completes within its 30 s deadline; small scrapes beside it within 2 s', () =>
    step(async () => {
      const idle = await d.scraper.scrape(NODE_EXPORTER_PORT, 10_000);
      const startedAt = Date.now();
      const big = d.scraper.scrape(BIG_PORT, BIG_DEADLINE_MS, '/big');
      let bigResult: AgentResult | undefined;
      void big.then((r) => {
        bigResult = r;
      });
      const small: AgentResult[] = [];
      await sleep(2000);
      for (let i = 0; i < 8 && bigResult === undefined; i++) {
        small.push(await d.scraper.scrape(NODE_EXPORTER_PORT, 10_000));
        await sleep(1000);
      }
      const bigDone = await big;
      const bigMs = Date.now() - startedAt;
      const slowest = Math.max(...small.map((r) => r.totalMs));
      console.log(`figure: slow line: idle small scrape ${idle.totalMs} ms (${idle.bytes} bytes)`);
      console.log(`figure: slow line: 5 MiB body ${bigDone.status} ${bigDone.outcome} in ${(bigMs / 1000).toFixed(1)} s (${((bigDone.bytes * 8) / (bigMs / 1000) / 1e6).toFixed(2)} Mbit/s)`); // prettier-ignore
      console.log(`figure: slow line: small scrapes beside it: ${small.map((r) => `${r.status} ${r.totalMs} ms`).join(', ')}`); // prettier-ignore
      assert.equal(bigDone.status, 200);
      assert.equal(bigDone.outcome, 'complete', bigDone.error);
      assert.equal(bigDone.bytes, BIG_BYTES);
      assert.ok(bigMs <= BIG_DEADLINE_MS, `the big body took ${bigMs} ms`);
      assert.ok(small.length >= 3, `small scrapes ran while the big body was in flight (${small.length})`); // prettier-ignore
      for (const r of small) assert.equal(r.status, 200, JSON.stringify(r));
      assert.ok(slowest <= SMALL_WITHIN_MS, `the slowest small scrape took ${slowest} ms`);
    }));
});
