/**
 * The PushProx jam cannot happen: scrapes that time out or that the scraper gives up on
 * leave nothing behind (no stream, no local fetch, no slot), so the next scrape is served
 * at once. The proxy's per-client stream limit and the client's connection pool are both
 * smaller than the number of abandoned scrapes, so any leak would make later scrapes fail.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import {
  eventually,
  getOrigin,
  metricValue,
  openScrape,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';

const ROUNDS = 2;
const PER_KIND = 100;

describe('no jam after timed-out and cancelled scrapes', () => {
  it(`${PER_KIND} timed-out and ${PER_KIND} cancelled scrapes per round leave no state; the next scrape is fast`, async () => {
    // Slow requests are held open; every one is tracked until its connection closes.
    const open = new Set<ServerResponse>();
    let arrivals = 0;
    const arrivalWaiters: Array<{ count: number; resolve: () => void }> = [];
    const arrivalsReach = (count: number): Promise<void> =>
      arrivals >= count
        ? Promise.resolve()
        : new Promise((resolve) => arrivalWaiters.push({ count, resolve }));
    const target = await startTarget((req, res) => {
      if (!req.url?.startsWith('/slow')) {
        res.end('fresh');
        return;
      }
      open.add(res);
      res.once('close', () => open.delete(res));
      arrivals += 1;
      for (const waiter of [...arrivalWaiters]) {
        if (arrivals >= waiter.count) {
          arrivalWaiters.splice(arrivalWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    }, after);
    // 120 slots: one round's 100 abandoned scrapes fit, 200 leaked from earlier would not.
    const { port, url } = await startProxy(after, { limits: { maxStreamsPerClient: 120 } });
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const base = `http://demo:${target.port}`;

    for (let round = 1; round <= ROUNDS; round += 1) {
      // 1. Scrapes that time out (short X-Prometheus-Scrape-Timeout-Seconds).
      const timedOut = await within(
        Promise.all(
          Array.from({ length: PER_KIND }, (_, i) =>
            scrapeThrough(port, `${base}/slow/timeout/${round}/${i}`, {
              'x-prometheus-scrape-timeout-seconds': '0.3',
            }),
          ),
        ),
        5000,
        `round ${round}: ${PER_KIND} timed-out scrapes to end`,
      );
      const statuses = new Map<number, number>();
      for (const result of timedOut) {
        statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
      }
      assert.deepEqual(
        [...statuses],
        [[504, PER_KIND]],
        `round ${round}: statuses of the timed-out scrapes`,
      );

      // 2. Scrapes the scraper gives up on while the target still holds them.
      const arrivedBefore = arrivals;
      const cancelled = Array.from({ length: PER_KIND }, (_, i) =>
        openScrape({ port }, `${base}/slow/cancel/${round}/${i}`, {
          'x-prometheus-scrape-timeout-seconds': '30',
        }),
      );
      await within(
        arrivalsReach(arrivedBefore + PER_KIND),
        5000,
        `round ${round}: ${PER_KIND} scrapes to reach the target (arrived ${arrivals - arrivedBefore})`,
      );
      for (const scrape of cancelled) scrape.req.destroy();

      // 3. Immediately: a normal scrape is served at once. Its deadline is 30 s, as long as
      // the abandoned ones': had it to wait for them to give up their slots or connections,
      // it would miss 10 s by far (a bound no load on this machine comes near).
      const fresh = await within(
        scrapeThrough(port, `${base}/fresh`, { 'x-prometheus-scrape-timeout-seconds': '30' }),
        10_000,
        `round ${round}: the scrape after the abandoned ones`,
      );
      assert.equal(fresh.status, 200, `round ${round}: ${fresh.body}`);
      assert.equal(fresh.body, 'fresh');

      // 4. Nothing is left behind: no stream in flight, no local fetch open.
      await eventually(() => open.size === 0, 3000, `round ${round}: target requests to close`);
      let inFlight: number | undefined;
      await eventually(
        async () => {
          const res = await getOrigin(port, '/metrics');
          inFlight = inFlightGauge(res.body);
          return inFlight === 0;
        },
        3000,
        `round ${round}: the in-flight gauge to read 0`,
      ).catch((err: Error) => {
        throw new Error(`${err.message} (last read ${inFlight})`);
      });
    }

    const metrics = (await getOrigin(port, '/metrics')).body;
    assert.equal(
      metricValue(metrics, 'natprox_scrapes_total', { outcome: 'timeout' }),
      ROUNDS * PER_KIND,
    );
    await eventually(
      async () =>
        metricValue((await getOrigin(port, '/metrics')).body, 'natprox_scrapes_total', {
          outcome: 'cancelled',
        }) ===
        ROUNDS * PER_KIND,
      3000,
      'every cancelled scrape to be counted',
    );
    assert.equal(metricValue(metrics, 'natprox_scrapes_total', { outcome: 'ok' }), ROUNDS);
    assert.equal(metricValue(metrics, 'natprox_scrapes_total', { outcome: 'busy' }) ?? 0, 0);
  });
});

/** The proxy's gauge of streams (scrapes) in flight. */
function inFlightGauge(metricsText: string): number | undefined {
  return (
    metricValue(metricsText, 'natprox_streams_in_flight') ??
    metricValue(metricsText, 'natprox_scrapes_in_flight')
  );
}
