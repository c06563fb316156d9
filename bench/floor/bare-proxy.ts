/**
 * The proxy half of the floor (bench/scenarios/floor.ts): a forward proxy and tunnel
 * endpoint written straight on node:http and node:http2. It makes the same exchanges as
 * `natprox proxy` (HTTP/1.1 from the scraper, one HTTP/2 stream per scrape on a tunnel the
 * client opened, the roles reversed after the Upgrade) and nothing else: no credentials,
 * limits, deadlines, cut-off detection, metrics or logs. What the hops alone cost here.
 * It takes natprox's workaround for Node's AsyncResource.bind (src/util/lean-async-bind.ts)
 * too: that is about Node, not about what natprox adds.
 *
 * IPC out: {type:'listening', port}
 */
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import {
  CONNECTION_WINDOW_BYTES,
  decodeRegistration,
  MAX_SESSION_MEMORY_MIB,
  REGISTRATION_HEADER,
  TUNNEL_SETTINGS,
  TUNNEL_UPGRADE_TOKEN,
} from '../../src/wire/protocol.js';
import { installLeanAsyncResourceBind } from '../../src/util/lean-async-bind.js';

installLeanAsyncResourceBind();

const tunnels = new Map<string, ClientHttp2Session>();

function responseHeaders(headers: IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) if (name.charCodeAt(0) !== 58 /* ':' */) out[name] = headers[name];
  return out;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/');
  const tunnel = tunnels.get(url.hostname);
  if (!tunnel) {
    res.writeHead(503).end();
    return;
  }
  const stream = tunnel.request(
    { ':method': 'GET', ':authority': url.host, ':path': `${url.pathname}${url.search}` },
    { endStream: true },
  );
  stream.on('error', () => res.destroy());
  stream.once('response', (headers) => {
    res.writeHead(Number(headers[':status']), responseHeaders(headers));
    stream.on('data', (chunk: Buffer) => {
      if (!res.write(chunk)) stream.pause();
    });
    res.on('drain', () => stream.resume());
    stream.once('end', () => res.end());
  });
});

server.on('upgrade', (req, socket: Socket, head: Buffer) => {
  const header = req.headers[REGISTRATION_HEADER];
  const registration = decodeRegistration(typeof header === 'string' ? header : undefined, {
    maxNames: 10_000,
    maxLabels: 64,
    maxPorts: 64,
  });
  if (typeof registration === 'string') {
    socket.end(`HTTP/1.1 400 Bad Request\r\n\r\n${registration}\n`);
    return;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_UPGRADE_TOKEN}\r\n\r\n`,
    () => {
      socket.setNoDelay(true);
      if (head.length > 0) socket.unshift(head);
      const session = http2.connect('http://bare-client', {
        createConnection: () => socket,
        settings: TUNNEL_SETTINGS,
        maxSessionMemory: MAX_SESSION_MEMORY_MIB,
      });
      session.once('connect', () => session.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
      session.on('error', () => {});
      for (const name of registration.names) tunnels.set(name, session);
    },
  );
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
