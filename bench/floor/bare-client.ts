/**
 * The client half of the floor (bench/scenarios/floor.ts): dials the bare proxy with the
 * tunnel's Upgrade, serves HTTP/2 on that socket and answers each stream from the local
 * target through undici's dispatcher, as `natprox client` does, with nothing else: no
 * allowlist, deadline, completion trailer, metrics or logs.
 *
 * Arguments: PROXY_PORT TARGET_PORT NAME,NAME,…   IPC out: {type:'connected'}
 */
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Pool } from 'undici';
import {
  encodeRegistration,
  MAX_SESSION_MEMORY_MIB,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_SETTINGS,
  TUNNEL_UPGRADE_TOKEN,
} from '../../src/wire/protocol.js';

const [proxyPort, targetPort, nameList] = process.argv.slice(2);
const names = (nameList ?? '').split(',');
const pool = new Pool(`http://127.0.0.1:${targetPort}`, { connections: 256 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  let resume: (() => void) | undefined;
  stream.on('error', () => {});
  stream.on('drain', () => resume?.());
  pool.dispatch(
    {
      method: 'GET',
      path: String(headers[':path']),
      headers: { host: String(headers[':authority']) },
    },
    {
      onConnect() {},
      onHeaders(status, raw, resumeBody) {
        resume = resumeBody;
        const out: http2.OutgoingHttpHeaders = { ':status': status };
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = String(raw[i]).toLowerCase();
          if (!HOP_BY_HOP.has(name)) out[name] = String(raw[i + 1]);
        }
        stream.respond(out);
        return true;
      },
      onData: (chunk) => stream.write(chunk),
      onComplete: () => stream.end(),
      onError: () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR),
    },
  );
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
