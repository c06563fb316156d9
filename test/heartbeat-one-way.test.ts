/**
 * Home to VPS dead, VPS to home alive: the proxy hears nothing and pings the client, and
 * those pings arrive. They must not keep the client's tunnel alive: only an answer to the
 * client's own ping proves that the way to the proxy works.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dialTunnel } from '../src/client/native/tunnel-dialer.js';
import type { Timers } from '../src/wire/heartbeat.js';
import { TUNNEL_UPGRADE_TOKEN } from '../src/wire/protocol.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One HTTP/2 frame on stream 0. */
function frame(type: number, flags: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  return Buffer.concat([head, payload]);
}
const SETTINGS = frame(0x4, 0);
const SETTINGS_ACK = frame(0x4, 0x1);
const PING = frame(0x6, 0, Buffer.alloc(8, 7));

/**
 * A "proxy" whose receiving side is cut: it upgrades the tunnel, then speaks HTTP/2 as a
 * peer that hears nothing (never answers a ping) yet sends its own pings when told to.
 */
async function deafProxy(): Promise<{ url: URL; ping: () => void }> {
  let tunnel: Socket | undefined;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${TUNNEL_UPGRADE_TOKEN}\r\nConnection: Upgrade\r\n\r\n`,
      );
      socket.write(Buffer.concat([PREFACE, SETTINGS, SETTINGS_ACK]));
      socket.resume(); // everything the client sends from here on is lost
      tunnel = socket;
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    tunnel?.destroy();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}`), ping: () => tunnel?.write(PING) };
}

/** Interval timers that fire only when the test ticks them. */
class ManualTimers implements Timers {
  private readonly live = new Set<() => void>();
  setInterval(fn: () => void): object {
    this.live.add(fn);
    return { fn };
  }
  clearInterval(handle: unknown): void {
    this.live.delete((handle as { fn: () => void }).fn);
  }
  tick(): void {
    for (const fn of [...this.live]) fn();
  }
}

it("the client drops a tunnel whose proxy pings it but never answers the client's pings", async () => {
  const proxy = await deafProxy();
  const timers = new ManualTimers();
  const tunnel = await dialTunnel({
    proxyUrl: proxy.url,
    registration: { names: ['home'], labels: {}, ports: [9], version: 'test' },
    handshakeTimeoutMs: 5000,
    heartbeat: { intervalMs: 100, maxMissed: 2, timers },
    onStream: (stream) => stream.close(),
  });
  after(() => tunnel.destroy());
  let pingsArrived = 0;
  tunnel.session.on('ping', () => {
    pingsArrived += 1;
  });
  let closedWith: string | undefined;
  void tunnel.closed.then((reason) => {
    closedWith = reason;
  });
  // Each interval: the proxy, having heard nothing, pings; the ping arrives; the tick runs.
  for (let interval = 1; interval <= 6 && closedWith === undefined; interval += 1) {
    proxy.ping();
    for (let waited = 0; pingsArrived < interval && waited < 5000; waited += 5) await sleep(5);
    assert.equal(pingsArrived, interval, "the proxy's ping arrived");
    timers.tick();
    await sleep(0);
  }
  assert.match(closedWith ?? 'still up after 6 intervals', /did not answer heartbeats/);
});
