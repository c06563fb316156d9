import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NatproxClient } from '../src/index.js';
import { countingTarget, eventually, scrapeThrough, startProxy } from './helpers/loopback.js';

describe('connections to local targets', () => {
  it('are pooled for all clients in a process and closed when the last one stops', async () => {
    const target = await countingTarget(after, (_req, res) => res.end('metric 1\n'));
    const { open, opened } = target;
    const { port, url } = await startProxy(after);
    const clients = ['first', 'second'].map((name) => {
      const client = new NatproxClient({
        proxyUrl: new URL(url),
        names: [name],
        allow: [{ host: '127.0.0.1', port: target.port }],
      });
      client.start();
      after(() => client.stop(0));
      return client;
    });
    await Promise.all(clients.map((client) => client.waitConnected(5000)));
    for (const name of ['first', 'second', 'first', 'second']) {
      const result = await scrapeThrough(port, `http://${name}:${target.port}/metrics`);
      assert.equal(result.status, 200, result.body);
    }
    assert.equal(opened(), 1, 'one keep-alive connection served both clients');

    await clients[0]?.stop(0);
    const again = await scrapeThrough(port, `http://second:${target.port}/metrics`);
    assert.equal(again.status, 200);
    assert.equal(opened(), 1, 'the other client still uses it');
    assert.equal(open.size, 1);

    await clients[1]?.stop(0);
    await eventually(() => open.size === 0, 3000, 'the last client to close the connection');
  });
});
