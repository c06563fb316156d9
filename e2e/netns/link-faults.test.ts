/**
 * The home link fails as real home links do, with the home in a network namespace of its own
 * (no inbound path) and the proxy in a VPS namespace: packets vanish with no RST, one
 * direction dies, the home's address changes, the proxy restarts under load. Each test
 * prints its measured figures on lines starting with "figure:" (docs/reliability.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  endedCleanly,
  printFigures,
  runFaultEpisode,
  type EpisodeFigures,
} from '../helpers/fault-episode.js';
import {
  CLIENT_NAME,
  Deployment,
  FEDERATE_PATH,
  HOME_PROMETHEUS_PORT,
  Load,
} from '../helpers/netns-deployment.js';

/** The bounds natprox promises on a dead link (README, docs/reliability.md). */
const DETECT_MS = 15_000;
const BACK_AFTER_HEAL_MS = 5000;
const BLACKHOLE_MS = Number(process.env.NATPROX_BLACKHOLE_MS ?? 60_000);
const ONE_WAY_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('natprox on a real link: the home in its own network namespace', () => {
  const d = new Deployment();

  async function step<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      console.error(`\n════ link faults: logs of every process ════\n${d.report()}\n`);
      throw err;
    }
  }

  function assertEpisode(f: EpisodeFigures): void {
    assert.ok(
      f.proxyDroppedMs !== undefined && f.proxyDroppedMs <= DETECT_MS,
      `the proxy drops the dead tunnel within ${DETECT_MS} ms (took ${f.proxyDroppedMs})`,
    );
    assert.ok(
      f.clientNoticedMs !== undefined && f.clientNoticedMs <= DETECT_MS,
      `the client notices within ${DETECT_MS} ms (took ${f.clientNoticedMs})`,
    );
    assert.ok(f.redials >= 2, `the client keeps redialing while the link is down (${f.redials})`);
    assert.ok(
      f.backAfterHealMs <= BACK_AFTER_HEAL_MS,
      `the tunnel is back within ${BACK_AFTER_HEAL_MS} ms of the link healing (took ${f.backAfterHealMs})`,
    );
    assert.ok(f.whileDown > 0, 'scrapes were sent while the tunnel was down');
    assert.equal(
      f.quick503,
      f.whileDown,
      'every scrape while the tunnel is down gets a 503 at once',
    );
    assert.deepEqual(
      f.overDeadline.map((r) => `${r.status} ${r.outcome} ${r.totalMs} ms ${r.error ?? ''}`),
      [],
      'no scrape ends past its deadline',
    );
    const unclean = f.results.filter((r) => !endedCleanly(r));
    assert.deepEqual(unclean, [], 'every scrape is a complete 200 or a clean error');
  }

  before(() => step(() => d.start()));
  after(() => d.stop());

  it(`a blackhole both ways for ${BLACKHOLE_MS / 1000} s: both ends drop the tunnel, scrapes get 503 at once, the tunnel is back on healing`, () =>
    step(async () => {
      const f = await runFaultEpisode(d, {
        name: 'blackhole',
        apply: () => d.net.blackhole(),
        heal: () => d.net.heal(),
        durationMs: BLACKHOLE_MS,
        perSecond: 5,
        deadlineMs: 10_000,
      });
      printFigures('blackhole', f);
      assertEpisode(f);
    }));

  it(`home to VPS dropped for ${ONE_WAY_MS / 1000} s: no half-open tunnel stays alive on either side`, () =>
    step(async () => {
      const f = await runFaultEpisode(d, {
        name: 'one direction',
        apply: () => d.net.dropHomeToVps(),
        heal: () => d.net.heal(),
        durationMs: ONE_WAY_MS,
        perSecond: 5,
        deadlineMs: 10_000,
      });
      printFigures('home-to-VPS dropped', f);
      assertEpisode(f);
    }));

  it('the home address changes: the old tunnel is dropped within 15 s, a new one comes up', () =>
    step(async () => {
      const load = new Load(d.scraper, 5, 10_000);
      load.start();
      await sleep(2000);
      const [old] = await d.waitForTunnel(5000);
      assert.ok(old);
      const clientFrom = d.client.lines().length;
      const movedAt = Date.now();
      const newAddress = d.net.moveHomeAddress();
      let oldGoneAt: number | undefined;
      let newUpAt: number | undefined;
      let longestOldListedMs = 0;
      const deadline = movedAt + 40_000;
      while (Date.now() < deadline && (oldGoneAt === undefined || newUpAt === undefined)) {
        const listed = (await d.scraper.clients()).filter((c) => c.names.includes(CLIENT_NAME));
        const now = Date.now();
        if (listed.some((c) => c.id === old.id)) longestOldListedMs = now - movedAt;
        else oldGoneAt ??= now;
        if (newUpAt === undefined && listed.some((c) => c.remoteAddress.includes(newAddress))) {
          newUpAt = now;
        }
        await sleep(200);
      }
      const noticed = d.client
        .lines()
        .slice(clientFrom)
        .some((l) => /tunnel down/.test(l));
      await sleep(2000);
      const results = await load.stop();
      const overDeadline = results.filter((r) => r.outcome === 'hung' || r.totalMs > r.deadlineMs + 1000); // prettier-ignore
      const fmt = (at: number | undefined): string => (at === undefined ? 'never' : `${((at - movedAt) / 1000).toFixed(1)} s`); // prettier-ignore
      console.log(`figure: address change: proxy dropped the old tunnel after ${fmt(oldGoneAt)}; new tunnel from ${newAddress} listed after ${fmt(newUpAt)}`); // prettier-ignore
      console.log(`figure: address change: client noticed: ${noticed}; scrapes ${results.length}, ${results.filter((r) => r.status !== 200).length} failed, ${overDeadline.length} past their deadline`); // prettier-ignore
      assert.ok(oldGoneAt !== undefined && oldGoneAt - movedAt <= 15_000, `old tunnel dropped within 15 s (${fmt(oldGoneAt)})`); // prettier-ignore
      assert.ok(
        longestOldListedMs <= 15_000,
        `the dead tunnel listed for ${longestOldListedMs} ms`,
      );
      assert.deepEqual(
        results.filter((r) => !endedCleanly(r)),
        [],
        'every scrape ends cleanly',
      );
      assert.ok(newUpAt !== undefined && newUpAt - movedAt <= 20_000, `new tunnel up (${fmt(newUpAt)})`); // prettier-ignore
      assert.deepEqual(overDeadline, [], 'no scrape ends past its deadline');
    }));

  it('the proxy restarts under 20 scrapes/s: no hung scrape, the tunnel is back within 5 s of the proxy listening', () =>
    step(async () => {
      const load = new Load(d.scraper, 20, 10_000);
      load.start();
      await sleep(3000);
      const stoppedAt = await d.proxy.stop('SIGTERM');
      d.startProxy();
      await d.proxy.waitForLine(/proxy listening/, 15_000);
      const listeningAt = Date.now();
      await d.waitForTunnel(15_000, 50);
      const backAt = Date.now();
      // Federation from the home Prometheus works through the new tunnel.
      const federated = await d.scraper.scrape(HOME_PROMETHEUS_PORT, 10_000, FEDERATE_PATH);
      assert.equal(federated.status, 200, JSON.stringify(federated));
      assert.equal(federated.outcome, 'complete');
      await sleep(3000);
      const results = await load.stop();
      const overDeadline = results.filter((r) => r.outcome === 'hung' || r.totalMs > r.deadlineMs + 1000); // prettier-ignore
      const unclean = results.filter((r) => r.status === 200 && r.outcome !== 'complete');
      const failed = results.filter((r) => !(r.status === 200 && r.outcome === 'complete'));
      console.log(`figure: proxy restart: down ${((listeningAt - stoppedAt) / 1000).toFixed(1)} s; tunnel back ${((backAt - listeningAt) / 1000).toFixed(1)} s after the proxy listened`); // prettier-ignore
      console.log(`figure: proxy restart: scrapes ${results.length}, ${failed.length} failed (${unclean.length} cut 200s), ${overDeadline.length} past their deadline`); // prettier-ignore
      assert.deepEqual(
        results.filter((r) => !endedCleanly(r)),
        [],
        'every scrape ends cleanly',
      );
      assert.ok(backAt - listeningAt <= BACK_AFTER_HEAL_MS, `tunnel back within 5 s (${backAt - listeningAt} ms)`); // prettier-ignore
      assert.deepEqual(overDeadline, [], 'no scrape ends past its deadline');
    }));
});
