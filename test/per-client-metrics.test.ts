import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { registerPerClientMetrics } from '../src/proxy/metrics/per-client-metrics.js';
import type { ClientSession } from '../src/proxy/client-session.js';
import { ProxyEvents } from '../src/proxy/proxy-events.js';
import { SessionRegistry } from '../src/proxy/session-registry.js';
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
  it('count scrapes, bytes and connects per name; gauges go with the client, counters stay', async () => {
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
      async () => !(await getOrigin(port, '/metrics')).body.includes('natprox_client_connected{'),
      3000,
      'natprox_client_connected of home-1 to go away',
    );
    const gone = (await getOrigin(port, '/metrics')).body;
    assert.doesNotMatch(gone, /natprox_client_label\{name="home-1"/);
    // A reconnect is counted, not erased: the counters continue where they were.
    assert.equal(metricValue(gone, 'natprox_client_connects_total', { name: 'home-1' }), 1);

    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home-1'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    assert.equal((await scrapeThrough(port, `http://home-1:${target.port}/m`)).status, 200);
    const again = (await getOrigin(port, '/metrics')).body;
    assert.equal(metricValue(again, 'natprox_client_connects_total', { name: 'home-1' }), 2);
    assert.equal(
      metricValue(again, 'natprox_client_scrapes_total', { name: 'home-1', outcome: 'ok' }),
      2,
    );
  });

  it("a departed name's counters go after the retention, and at most maxNames are kept", async () => {
    let now = 0;
    const registry = new Registry();
    const events = new ProxyEvents();
    const sessions = new SessionRegistry();
    registerPerClientMetrics(registry, events, sessions, {
      retentionMs: 1000,
      maxNames: 2,
      now: () => now,
    });
    const session = (name: string) => ({ registration: { names: [name] } }) as ClientSession;
    const connectsOf = async () =>
      (await registry.getSingleMetric('natprox_client_connects_total')?.get())?.values
        .map((v) => v.labels.name)
        .sort();
    for (const name of ['a', 'b', 'c']) {
      events.emit('tunnelConnected', session(name));
      events.emit('tunnelDisconnected', session(name), 'gone');
      now += 100;
    }
    assert.deepEqual(await connectsOf(), ['b', 'c'], 'the oldest departed name beyond 2 went');
    now += 850;
    await registry.metrics();
    assert.deepEqual(await connectsOf(), ['c'], 'b left over 1000 ms ago');
    events.emit('tunnelConnected', session('c'));
    now += 5000;
    await registry.metrics();
    assert.deepEqual(await connectsOf(), ['c'], 'a name served again is not departed');
  });
});
