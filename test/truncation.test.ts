import assert from 'node:assert/strict';
import type http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  openScrape,
  readBody,
  scrapeThrough,
  startClient,
  startProxy,
  startRelay,
  startTarget,
  within,
} from './helpers/loopback.js';

/**
 * A body cut off anywhere upstream must reach the scraper as a broken transfer. If it
 * arrived as a complete 200, Prometheus would store a truncated scrape as if it were whole.
 */
describe('a body cut off mid-transfer', () => {
  /**
   * A target that sends the head and part of the body, then waits for the test to cut it
   * off. With `declared`, the head carries a Content-Length the body never reaches (the
   * proxy then judges completeness by counting bytes, without the client's trailer).
   */
  async function halfBodyTarget(declared?: number): Promise<{
    port: number;
    started: Promise<http.ServerResponse>;
  }> {
    let started: (res: http.ServerResponse) => void = () => {};
    const startedPromise = new Promise<http.ServerResponse>((resolve) => {
      started = resolve;
    });
    const target = await startTarget((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        ...(declared === undefined ? {} : { 'content-length': String(declared) }),
      });
      res.write('# first part of the exposition\n'.repeat(2000));
      started(res);
    }, after);
    return { port: target.port, started: startedPromise };
  }

  for (const declared of [undefined, 1_000_000]) {
    const kind = declared === undefined ? 'chunked' : 'Content-Length';
    it(`when the target dies mid-body (${kind}), the scraper sees the response break, not end`, async () => {
      const target = await halfBodyTarget(declared);
      const { port, url } = await startProxy(after);
      await startClient(after, {
        proxyUrl: new URL(url),
        allow: [{ host: '127.0.0.1', port: target.port }],
      });
      const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`);
      const response = await within(scrape.response, 3000, 'the response head');
      assert.equal(response.statusCode, 200);
      const body = readBody(response);
      (await target.started).socket?.destroy();
      await assert.rejects(within(body, 3000, 'the body to break'), /aborted|closed|reset/i);
    });

    it(`when the tunnel is lost mid-body (${kind}), the scraper sees the response break, not end`, async () => {
      const target = await halfBodyTarget(declared);
      const { port } = await startProxy(after);
      const relay = await startRelay({ port }, after);
      await startClient(after, {
        proxyUrl: new URL(`http://127.0.0.1:${relay.port}`),
        allow: [{ host: '127.0.0.1', port: target.port }],
      });
      const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`);
      const response = await within(scrape.response, 3000, 'the response head');
      const body = readBody(response);
      await target.started;
      relay.cut('close');
      await assert.rejects(within(body, 3000, 'the body to break'), /aborted|closed|reset/i);
    });
  }

  it('a complete chunked body still ends normally', async () => {
    const target = await startTarget((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('a'.repeat(100_000));
      setTimeout(() => res.end('b'.repeat(100_000)), 20);
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`);
    const body = await readBody(await scrape.response);
    assert.equal(body.length, 200_000);
  });

  it('a body that ends with the connection (HTTP/1.0, no length) still ends normally', async () => {
    // Old exporters answer this way; the end of the connection is the end of the body.
    const target = net.createServer((socket) => {
      socket.once('data', () => {
        socket.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n${'x 1\n'.repeat(5000)}`);
      });
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    after(() => target.close());
    const targetPort = (target.address() as AddressInfo).port;
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: targetPort }],
    });
    for (let i = 0; i < 2; i += 1) {
      const result = await scrapeThrough(port, `http://demo:${targetPort}/metrics`);
      assert.equal(result.status, 200, result.body.slice(0, 200));
      assert.equal(result.body.length, 20_000);
    }
  });
});
