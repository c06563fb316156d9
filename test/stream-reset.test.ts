/**
 * A peer that destroys its end of a stream resets it with NO_ERROR (natprox proxies did so
 * for a body they cut off, max_response_bytes, before they used CANCEL). When that reset
 * finds body bytes still queued on the client's stream (the stream window full), the client
 * must let the stream go: a stream that never closes holds the client's HTTP/2 session, so a
 * later GOAWAY would never close the tunnel.
 */
import assert from 'node:assert/strict';
import { constants, type ClientHttp2Stream, type ServerHttp2Stream } from 'node:http2';
import { after, describe, it } from 'node:test';
import { Allowlist } from '../src/client/allowlist.js';
import { ClientEvents } from '../src/client/client-events.js';
import { ScrapeExecutor } from '../src/client/native/scrape-executor.js';
import { STREAM_WINDOW_BYTES } from '../src/wire/protocol.js';
import { dialTunnel } from '../src/client/native/tunnel-dialer.js';
import { eventually, startProxy, startTarget, within } from './helpers/loopback.js';

/** A scrape whose body waits on the client's stream: the proxy's end reads nothing. */
async function scrapeWithQueuedBody() {
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
  return { response, session, tunnel, relayed: () => relayed };
}

describe('a stream reset while body bytes wait on it', () => {
  it('with NO_ERROR: closes, and the proxy’s GOAWAY then closes the tunnel', async () => {
    const { response, session, tunnel, relayed: relayedStream } = await scrapeWithQueuedBody();
    const relayed = relayedStream();
    try {
      response.body.destroy(); // a plain destroy() resets with NO_ERROR
      await eventually(() => relayed?.closed === true, 2000, 'the reset to arrive');
      assert.equal(relayed?.rstCode, constants.NGHTTP2_NO_ERROR);
      await eventually(() => relayed?.destroyed === true, 2000, 'the client to let the stream go');

      // The proxy's shutdown: GOAWAY, then it ends its side. The client closes the tunnel.
      session.close('test: proxy shutting down');
      await within(tunnel.finished, 3000, 'the client to close the tunnel after the GOAWAY');
    } finally {
      // A stuck tunnel would hold the proxy's shutdown in the teardown.
      tunnel.destroy();
    }
  });

  it('cancelled by the proxy (a body over max_response_bytes): the client sees CANCEL', async () => {
    const { response, tunnel, relayed: relayedStream } = await scrapeWithQueuedBody();
    const relayed = relayedStream();
    try {
      response.cancel();
      await eventually(() => relayed?.destroyed === true, 2000, 'the client to let the stream go');
      assert.equal(relayed?.rstCode, constants.NGHTTP2_CANCEL);
    } finally {
      tunnel.destroy();
    }
  });
});
