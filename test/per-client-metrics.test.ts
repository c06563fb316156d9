import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  eventually,
  getOrigin,
  metricValue,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
} from './helpers/loopback.js';

describe('per-client metrics on the proxy', () => {
  it('count scrapes, bytes and connects per name, and go away with the client', async () => {
    const target = await startTarget((_req, res) => res.end('x'.repeat(100)), after);
    const { port, url } = await startProxy(after);
    const client = await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home-1'],
      labels: { location: 'home' },
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    assert.equal((await scrapeThrough(port, `http://home-1:${target.port}/m`)).status, 200);
    assert.equal((await scrapeThrough(port, `http://home-1:${target.port + 1}/m`)).status, 403);
    assert.equal((await scrapeThrough(port, `http://nobody:${target.port}/m`)).status, 503);

    const text = (await getOrigin(port, '/metrics')).body;
    const value = (name: string, labels: Record<string, string>) => metricValue(text, name, labels);
    assert.equal(value('natprox_client_connected', { name: 'home-1', transport: 'native' }), 1);
    assert.equal(value('natprox_client_scrapes_total', { name: 'home-1', outcome: 'ok' }), 1);
    assert.equal(
      value('natprox_client_scrapes_total', { name: 'home-1', outcome: 'forbidden' }),
      1,
    );
    assert.ok((value('natprox_client_relayed_bytes_total', { name: 'home-1' }) ?? 0) >= 100);
    assert.equal(value('natprox_client_connects_total', { name: 'home-1' }), 1);
    assert.equal(
      value('natprox_client_label', { name: 'home-1', label: 'location', value: 'home' }),
      1,
    );
    assert.doesNotMatch(text, /name="nobody"/, 'unknown names create no series');

    await client.stop(0);
    await eventually(
      async () => !(await getOrigin(port, '/metrics')).body.includes('name="home-1"'),
      3000,
      'the series of home-1 to go away',
    );
  });
});
