/**
 * CONNECT tunnels (https targets) that one end closes: the other end's connection must close
 * at once, also when bytes were still queued on the way (the queued bytes of a reset HTTP/2
 * stream can keep it, and its session, alive in Node 20: see src/wire/peer-reset.ts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { connectThrough } from './helpers/raw-http.js';
import { eventually, startClient, startProxy, within } from './helpers/loopback.js';

/**
 * "At once", against "never": a connection the bug keeps stays open for good (the heartbeat
 * gets its pongs), so a wait this long tells them apart on a machine however loaded.
 */
const CLOSES_WITHIN_MS = 10_000;

/** Listens on 127.0.0.1 until the file's tests are done; returns the port. */
async function listenOnLoopback(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** A proxy and a client allowed to reach `targetPort`, and a CONNECT tunnel to it. */
async function tunnelTo(targetPort: number) {
  const { proxy, port, url } = await startProxy(after);
  await startClient(after, {
    proxyUrl: new URL(url),
    allow: [{ host: '127.0.0.1', port: targetPort }],
  });
  const tunnel = await connectThrough(port, `demo:${targetPort}`);
  assert.equal(tunnel.status, 200, tunnel.head.toString());
  tunnel.socket.on('error', () => {});
  return { proxy, socket: tunnel.socket };
}

/** A TCP target that reads nothing and closes each connection after `closeAfterMs`. */
async function closingTarget(closeAfterMs: number): Promise<{ port: number }> {
  const server = net.createServer((socket) => {
    socket.pause();
    socket.on('error', () => {});
    setTimeout(() => socket.destroy(), closeAfterMs);
  });
  return { port: await listenOnLoopback(server) };
}

/** A TCP target that sends `bytes` on each connection and reports when one closes. */
async function streamingTarget(bytes: number): Promise<{ port: number; closed: Promise<void> }> {
  let closedOne: () => void = () => {};
  const closed = new Promise<void>((resolve) => (closedOne = resolve));
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('close', () => closedOne());
    const chunk = Buffer.alloc(64 * 1024, 2);
    let sent = 0;
    const more = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) return;
      }
      socket.end();
    };
    socket.on('drain', more);
    more();
  });
  return { port: await listenOnLoopback(server), closed };
}

describe('CONNECT tunnel closed by the scraper mid-answer', () => {
  it("the target's connection closes at once, though the target's bytes are still queued", async () => {
    const target = await streamingTarget(256 * 1024 * 1024);
    const tunnel = await tunnelTo(target.port);
    // Read a little, then stop reading so the relay backs up, then hang up.
    await within(
      new Promise((resolve) => tunnel.socket.once('data', resolve)),
      5000,
      'first bytes',
    );
    tunnel.socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    tunnel.socket.destroy();
    // A connection kept by its queued bytes stays for good (nothing times it out here).
    await within(target.closed, CLOSES_WITHIN_MS, "the target's connection to close");
  });
});

describe('CONNECT tunnel closed by its target', () => {
  for (const queued of [false, true]) {
    it(`the scraper's connection closes at once${queued ? ' while its bytes are still queued' : ''}`, async () => {
      const target = await closingTarget(300);
      const tunnel = await tunnelTo(target.port);
      const outcomes: string[] = [];
      tunnel.proxy.events.on('httpsConnectFinished', (info) => outcomes.push(info.outcome));
      const closed = new Promise<void>((resolve) => tunnel.socket.once('close', () => resolve()));
      if (queued) {
        // More than the target, the client's socket and the HTTP/2 windows take in.
        // 0x16 starts a TLS handshake record: only TLS passes through CONNECT.
        const chunk = Buffer.alloc(1024 * 1024, 0x16);
        for (let i = 0; i < 64; i += 1) tunnel.socket.write(chunk);
      }
      // A connection kept by its queued bytes stays for good (nothing times it out here).
      await within(closed, CLOSES_WITHIN_MS, "the scraper's connection to close");
      await eventually(() => outcomes.length === 1, 2000, 'the CONNECT reported');
      assert.deepEqual(outcomes, ['ok']);
    });
  }
});

describe('CONNECT carries TLS only', () => {
  it('plain HTTP written into a CONNECT tunnel never reaches the target (POST /-/quit)', async () => {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => received.push(chunk));
    });
    const tunnel = await tunnelTo(await listenOnLoopback(server));
    const outcomes: Array<{ outcome: string; reason?: string | undefined }> = [];
    tunnel.proxy.events.on('httpsConnectFinished', (info) => outcomes.push(info));
    const closed = new Promise<void>((resolve) => tunnel.socket.once('close', () => resolve()));
    tunnel.socket.write('POST /-/quit HTTP/1.1\r\nHost: demo\r\nContent-Length: 0\r\n\r\n');
    await within(closed, 5000, 'the tunnel to close');
    await eventually(() => outcomes.length === 1, 2000, 'the CONNECT reported');
    assert.deepEqual(Buffer.concat(received).length, 0, 'the target received nothing');
  });
});
