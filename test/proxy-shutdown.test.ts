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
} from '../src/tunnel/protocol.js';
import { eventually, startProxy, within } from './helpers/loopback.js';

/** Opens a tunnel by hand and then never speaks or closes: a client that is stuck. */
function stuckClient(port: number): Promise<Socket> {
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
      after(() => socket.destroy());
      resolve(socket);
    });
    req.end();
  });
}

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
