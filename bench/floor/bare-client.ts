/**
 * The client half of the floor (bench/scenarios/floor.ts): dials the bare proxy with the
 * tunnel's Upgrade, serves HTTP/2 on that socket and answers each stream from the local
 * target with node:http and natprox's connection pool, as `natprox client` does, with nothing else:
 * no allowlist, deadline, completion trailer, metrics or logs.
 *
 * Arguments: PROXY_PORT TARGET_PORT NAME,NAME,…   IPC out: {type:'connected'}
 */
import http, { type IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import {
  encodeRegistration,
  MAX_SESSION_MEMORY_MIB,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_SETTINGS,
  TUNNEL_UPGRADE_TOKEN,
} from '../../src/wire/protocol.js';
import { TargetPool } from '../../src/client/target-pool.js';

const [proxyPort, targetPort, nameList] = process.argv.slice(2);
const names = (nameList ?? '').split(',');
// natprox's own connection pool (leaner than Node's Agent), so the hop does what natprox's does.
const agent = new TargetPool('http:', 80) as unknown as http.Agent;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  stream.on('error', () => {});
  const request = http.request({
    agent,
    host: '127.0.0.1',
    port: Number(targetPort),
    path: String(headers[':path']),
    headers: ['host', String(headers[':authority'])],
  });
  request.on('response', (res: IncomingMessage) => {
    const out: http2.OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
    const raw = res.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = String(raw[i]).toLowerCase();
      if (!HOP_BY_HOP.has(name)) out[name] = raw[i + 1];
    }
    stream.respond(out);
    stream.on('drain', () => res.resume());
    res.on('data', (chunk: Buffer) => {
      if (!stream.write(chunk)) res.pause();
    });
    res.on('end', () => stream.end());
  });
  request.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  request.end();
}

const request = http.request({
  host: '127.0.0.1',
  port: Number(proxyPort),
  path: TUNNEL_PATH,
  agent: false,
  headers: {
    connection: 'Upgrade',
    upgrade: TUNNEL_UPGRADE_TOKEN,
    [REGISTRATION_HEADER]: encodeRegistration({
      names,
      labels: {},
      ports: [Number(targetPort)],
      version: 'bare',
    }),
  },
});
request.once('upgrade', (_res, socket: Socket, head: Buffer) => {
  socket.setNoDelay(true);
  if (head.length > 0) socket.unshift(head);
  const server = http2.createServer({
    settings: TUNNEL_SETTINGS,
    maxSessionMemory: MAX_SESSION_MEMORY_MIB,
  });
  server.on('stream', serve);
  server.emit('connection', socket);
  process.send?.({ type: 'connected' });
});
request.once('error', (err) => {
  console.error(`bare client: ${err.message}`);
  process.exit(1);
});
request.end();
process.on('disconnect', () => process.exit(0));
