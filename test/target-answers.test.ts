import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { NatproxClient } from '../src/index.js';
import { eventually, scrapeThrough, startProxy } from './helpers/loopback.js';

/**
 * Targets answer in every shape HTTP/1.1 allows, and some it does not. Each must reach the
 * scraper the same way through either transport: whole when it was whole, as natprox's 502
 * with the cause when the target broke the protocol, broken off when it was cut short.
 */
const ANSWERS: Record<string, string> = {
  '/chunked-with-trailers':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n',
  '/connection-close': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
  '/early-hints':
    'HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc',
  '/repeated-headers':
    'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 3\r\n\r\nabc',
  '/not-http': 'NOT HTTP AT ALL\r\n\r\n',
  '/huge-header': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 3\r\n\r\nabc`,
  '/short-body': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
};

/** A target written on raw sockets, so it can answer what node:http would never send. */
async function rawTarget(): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', (request) => {
      const path = request.toString('latin1').split(' ')[1] ?? '/';
      if (path === '/hang-up') {
        socket.destroy();
        return;
      }
      socket.write(ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes');
      if (path === '/short-body') setTimeout(() => socket.destroy(), 50);
      if (path === '/connection-close' || path === '/not-http') socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

for (const transport of ['native', 'pushprox'] as const) {
  describe(`target answers through the ${transport} transport`, () => {
    async function setup(): Promise<{
      scrape: (path: string) => ReturnType<typeof scrapeThrough>;
    }> {
      const targetPort = await rawTarget();
      const { port, url } = await startProxy(after);
      const client = new NatproxClient({
        proxyUrl: new URL(url),
        names: ['shapes'],
        allow: [{ host: '127.0.0.1', port: targetPort }],
        transport,
        pollAcceptedAfterMs: 50,
      });
      client.start();
      after(() => client.stop(0));
      const scrape = (path: string): ReturnType<typeof scrapeThrough> =>
        scrapeThrough(port, `http://shapes:${targetPort}${path}`);
      await eventually(async () => (await scrape('/')).status === 200, 5000, 'the client');
      return { scrape };
    }

    it('whole answers arrive whole, however they were framed', async () => {
      const { scrape } = await setup();
      for (const path of ['/chunked-with-trailers', '/connection-close', '/early-hints']) {
        const result = await scrape(path);
        assert.equal(result.status, 200, path);
        assert.equal(result.body, 'abc', path);
      }
      const repeated = await scrape('/repeated-headers');
      assert.deepEqual(repeated.headers['set-cookie'], ['a=1', 'b=2'], 'Set-Cookie is not joined');
      assert.equal(repeated.headers['x-dup'], '1, 2');
    });

    it('a target that breaks HTTP gets natprox 502 with the cause', async () => {
      const { scrape } = await setup();
      for (const [path, cause] of [
        ['/not-http', /HPE_INVALID_CONSTANT/],
        ['/hang-up', /closed the connection without answering/],
        ['/huge-header', /HPE_HEADER_OVERFLOW/],
      ] as const) {
        const result = await scrape(path);
        assert.equal(result.status, 502, path);
        assert.match(result.body, cause, path);
      }
    });

    it('a body shorter than its Content-Length reaches the scraper broken off', async () => {
      const { scrape } = await setup();
      await assert.rejects(scrape('/short-body'), /aborted|hang up|closed/i);
    });
  });
}
