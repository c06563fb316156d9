/**
 * The proxy cuts a body off (max_response_bytes) by destroying its end of the stream, which
 * resets it with NO_ERROR. When that reset finds body bytes still queued on the client's
 * stream (the stream window full), the client must let the stream go: a stream that never
 * closes holds the client's HTTP/2 session, so a later GOAWAY would never close the tunnel.
 */
import assert from 'node:assert/strict';
import type { ClientHttp2Stream, ServerHttp2Stream } from 'node:http2';
import { after, describe, it } from 'node:test';
import { Allowlist } from '../src/client/allowlist.js';
import { ClientEvents } from '../src/client/client-events.js';
import { ScrapeExecutor } from '../src/client/scrape-executor.js';
import { STREAM_WINDOW_BYTES } from '../src/tunnel/protocol.js';
import { dialTunnel } from '../src/tunnel/tunnel-dialer.js';
import { eventually, startProxy, startTarget, within } from './helpers/loopback.js';

describe('a stream the proxy resets while body bytes wait on it', () => {
  it('closes, and the proxy’s GOAWAY then closes the tunnel', async () => {
    // Twice the stream window: the proxy does not read, so the rest waits on the client.
    const body = Buffer.alloc(STREAM_WINDOW_BYTES * 2, 'x');
    const target = await startTarget((_req, res) => res.end(body), after);
    const { proxy, url } = await startProxy(after);
    // The client's own pieces, as NatproxClient wires them, to watch the stream.
    const executor = new ScrapeExecutor(
      new Set(['demo']),
      new Allowlist([{ host: '127.0.0.1', port: target.port }]),
      new ClientEvents(),
    );
    after(() => executor.close());
    let relayed: ServerHttp2Stream | undefined;
    const tunnel = await dialTunnel({
      proxyUrl: new URL(url),
      registration: { names: ['demo'], labels: {}, ports: [target.port], version: 'test' },
      handshakeTimeoutMs: 5000,
      heartbeat: { intervalMs: 60_000, maxMissed: 2 },
      onStream: (stream, headers) => {
        relayed = stream;
        executor.handle(stream, headers);
      },
    });
    await eventually(() => proxy.registry.lookup('demo') !== undefined, 2000, 'registered');
    const session = proxy.registry.lookup('demo');
    assert.ok(session);

    const response = await session.scrape(
      { name: 'demo', port: target.port, pathAndQuery: '/big', headers: {}, deadlineMs: 10_000 },
      new AbortController().signal,
    );
    // The proxy reads nothing: once the client has sent a whole stream window, what the
    // client still holds can only wait on its stream.
    const proxyEnd = response.body as ClientHttp2Stream;
    await eventually(
      () => proxyEnd.state.localWindowSize === 0 && (relayed?.writableLength ?? 0) > 0,
      5000,
      'body bytes queued behind a full stream window',
    );
    try {
      // What the proxy's scrape handler does with a body over max_response_bytes.
      response.body.destroy();
      await eventually(() => relayed?.closed === true, 2000, 'the reset to arrive');
      await eventually(() => relayed?.destroyed === true, 2000, 'the client to let the stream go');

      // The proxy's shutdown: GOAWAY, then it ends its side. The client closes the tunnel.
      session.close('test: proxy shutting down');
      await within(tunnel.finished, 3000, 'the client to close the tunnel after the GOAWAY');
    } finally {
      // A stuck tunnel would hold the proxy's shutdown in the teardown.
      tunnel.destroy();
    }
  });
});
