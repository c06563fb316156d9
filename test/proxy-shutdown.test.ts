/**
 * A proxy's shutdown must not wait on its clients' cooperation: it sends each tunnel a
 * GOAWAY and ends its side, and a client that never closes its end must not hold the
 * shutdown (and the process) forever.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  encodeRegistration,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE_TOKEN,
} from '../src/wire/protocol.js';
import { eventually, startProxy, within } from './helpers/loopback.js';

/** An HTTP/2 server's side of the handshake: its SETTINGS, and the ack of the proxy's. */
const SETTINGS_AND_ACK = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);

/**
 * Opens a tunnel by hand and then never closes it: a client that is stuck. With
 * `handshake` it completes HTTP/2's handshake first, otherwise it never speaks at all.
 */
function stuckClient(port: number, handshake = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: TUNNEL_PATH,
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: TUNNEL_UPGRADE_TOKEN,
        [REGISTRATION_HEADER]: encodeRegistration({
          names: ['stuck'],
          labels: {},
          ports: [9100],
          version: 'test',
        }),
      },
    });
    req.once('error', reject);
    req.once('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.once('upgrade', (_res, socket: Socket) => {
      // Does not end its side when the proxy ends its own.
      socket.allowHalfOpen = true;
      socket.on('error', () => {});
      socket.resume(); // reads (and drops) what the proxy sends, so its FIN is seen
      if (handshake) socket.write(SETTINGS_AND_ACK);
      after(() => socket.destroy());
      resolve(socket);
    });
    req.end();
  });
}

/** Whether the proxy still holds the connection: a write to a closed one fails (EPIPE, RST). */
async function proxyLetGo(socket: Socket, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (socket.destroyed) return true;
    socket.write('x');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return socket.destroyed;
}

describe('a tunnel the proxy closes (as a config reload does)', () => {
  for (const handshake of [true, false]) {
    const client = handshake ? 'a client that never closes its end' : 'a client that never spoke';
    it(`is torn down after its GOAWAY for ${client}`, async () => {
      const { proxy, port } = await startProxy(after);
      const socket = await stuckClient(port, handshake);
      await eventually(() => proxy.registry.lookup('stuck') !== undefined, 2000, 'registered');
      proxy.registry.lookup('stuck')?.close('its token no longer grants its names');
      try {
        await eventually(() => socket.readableEnded, 2000, 'the proxy ending its side');
        assert.equal(await proxyLetGo(socket, 4000), true, 'the proxy kept the socket 4 s after');
      } finally {
        socket.destroy(); // or the proxy's shutdown in the teardown would wait for it
      }
    });
  }
});

describe('proxy shutdown', () => {
  it('finishes when a client does not close its tunnel after the GOAWAY', async () => {
    const { proxy, port } = await startProxy(after);
    const socket = await stuckClient(port);
    await eventually(() => proxy.registry.lookup('stuck') !== undefined, 2000, 'registered');
    const started = Date.now();
    try {
      await within(proxy.shutdown(0), 5000, 'the shutdown');
    } catch (err) {
      socket.destroy(); // lets the stuck shutdown (and the test's teardown) finish
      throw err;
    }
    assert.ok(Date.now() - started < 3000, `shutdown took ${Date.now() - started} ms`);
    await eventually(() => socket.readableEnded, 2000, 'the proxy’s end of the connection closed');
  });
});
