import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { scrapeThrough, startClient, startProxy, startTarget } from './helpers/loopback.js';

describe('a scrape through the proxy', () => {
  it('reaches the allowlisted target of the named client and returns its body', async () => {
    const target = await startTarget((req, res) => res.end(`path=${req.url}`), after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const result = await scrapeThrough(port, `http://demo:${target.port}/metrics?a=1`);
    assert.equal(result.status, 200);
    assert.equal(result.body, 'path=/metrics?a=1');
  });
});
