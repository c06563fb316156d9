/**
 * What the client reports about the scrapes it served (its logs and metrics) must match what
 * happened: a body that reached the scraper in full is "ok". The proxy runs as its own
 * process: in one event loop with the client, the order of events that misled the client
 * (its stream closing before the callbacks of its last writes) did not occur.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import {
  eventually,
  scrapeThrough,
  startClient,
  spawnNatprox,
  startTarget,
} from './helpers/loopback.js';

const BODY = 'x'.repeat(10 * 1024);
const SCRAPES = 400;
const CONCURRENCY = 8;

describe('outcomes the client reports', () => {
  for (const framing of ['content-length', 'chunked'] as const) {
    it(`every complete scrape is ok at the proxy and at the client (${framing} bodies)`, async () => {
      const target = await startTarget((_req, res) => {
        if (framing === 'content-length') res.setHeader('content-length', BODY.length);
        res.end(BODY);
      }, after);
      const proxy = spawnNatprox(['proxy', '--listen', '127.0.0.1:0'], after);
      const listening = await proxy.waitFor(/"address":"127\.0\.0\.1:\d+"/);
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(listening)?.[1]);
      const client = await startClient(after, {
        proxyUrl: new URL(`http://127.0.0.1:${port}`),
        allow: [{ host: '127.0.0.1', port: target.port }],
      });
      await proxy.waitFor(/client connected/);
      const atClient: string[] = [];
      client.events.on('scrapeServed', (info) =>
        atClient.push(info.reason ? `${info.outcome}: ${info.reason}` : info.outcome),
      );

      const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      after(() => agent.destroy());
      let sent = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (sent < SCRAPES) {
            sent += 1;
            const result = await scrapeThrough(
              port,
              `http://demo:${target.port}/metrics`,
              {},
              agent,
            );
            assert.equal(result.status, 200);
            assert.equal(result.body.length, BODY.length);
          }
        }),
      );
      await eventually(() => atClient.length === SCRAPES, 5000, 'the client to report all');
      const notOk = atClient.filter((outcome) => outcome !== 'ok');
      assert.equal(notOk.length, 0, `${notOk.length} reported as failed, such as: ${notOk[0]}`);
    });
  }
});
