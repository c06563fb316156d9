/**
 * One hop of the floor (bench/scenarios/floor.ts): a forward proxy written straight on
 * node:http that fetches the target itself (with natprox's connection pool), with no tunnel. A
 * scrape through natprox (or the bare relay) crosses two such hops, the proxy and the
 * client; this shows what one costs on this machine.
 *
 * Arguments: TARGET_PORT   IPC out: {type:'listening', port}
 */
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TargetPool } from '../../src/client/target-pool.js';

const [targetPort] = process.argv.slice(2);
// natprox's own connection pool (leaner than Node's Agent), so the hop does what natprox's does.
const agent = new TargetPool('http:', 80) as unknown as http.Agent;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/');
  const request = http.request({
    agent,
    host: '127.0.0.1',
    port: Number(targetPort),
    path: `${url.pathname}${url.search}`,
    headers: ['host', url.host],
  });
  request.on('response', (answer: IncomingMessage) => {
    const out: http.OutgoingHttpHeaders = {};
    const raw = answer.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = String(raw[i]).toLowerCase();
      if (!HOP_BY_HOP.has(name)) out[name] = raw[i + 1];
    }
    res.writeHead(answer.statusCode ?? 502, out);
    res.on('drain', () => answer.resume());
    answer.on('data', (chunk: Buffer) => {
      if (!res.write(chunk)) answer.pause();
    });
    answer.on('end', () => res.end());
  });
  request.on('error', () => res.destroy());
  request.end();
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
