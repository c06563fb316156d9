/**
 * Node keeps a closed HTTP/2 stream reachable from its native handle until a full garbage
 * collection. Whatever the stream's listeners hold lives as long: the proxy's listeners must
 * be gone from a stream once its scrape is over, or every scrape's objects outlive the young
 * generation (with 10,000 tunnels that was most of what the proxy promoted to old space).
 */
import assert from 'node:assert/strict';
import type { ClientHttp2Stream } from 'node:http2';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ignore } from '../src/util/ignore.js';
import { relayBody } from '../src/util/relay-body.js';
import { eventually, startClient, startProxy, startTarget } from './helpers/loopback.js';

describe('a scrape stream at the proxy, once closed', () => {
  it('carries none of the proxy’s listeners, only a shared no-op for errors', async () => {
    const target = await startTarget((_req, res) => res.end('metric 1\n'), after);
    const { proxy, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    await eventually(() => proxy.registry.lookup('demo') !== undefined, 2000, 'registered');
    const session = proxy.registry.lookup('demo');
    assert.ok(session);

    const response = await session.scrape(
      { name: 'demo', port: target.port, pathAndQuery: '/metrics', headers: {}, deadlineMs: 5000 },
      new AbortController().signal,
    );
    const stream = response.body as ClientHttp2Stream;
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    await new Promise<void>((resolve, reject) =>
      relayBody(stream, sink, {}, (err) => (err ? reject(err) : resolve())),
    );
    await eventually(() => stream.destroyed, 2000, 'the stream to close');
    await new Promise((resolve) => setImmediate(resolve)); // its 'close' is emitted on a tick

    for (const event of ['response', 'trailers', 'data']) {
      assert.equal(stream.listenerCount(event), 0, `a listener for '${event}' is left`);
    }
    assert.ok(
      stream.listeners('error').every((listener) => listener === ignore),
      'an error listener other than the shared no-op is left',
    );
  });
});
