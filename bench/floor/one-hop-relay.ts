/**
 * One hop of the floor (bench/scenarios/floor.ts): a forward proxy written straight on
 * node:http and undici that fetches the target itself, with no tunnel. A scrape through
 * natprox (or the bare relay) crosses two such hops, the proxy and the client; this shows
 * what one costs on this machine.
 *
 * Arguments: TARGET_PORT   IPC out: {type:'listening', port}
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const [targetPort] = process.argv.slice(2);
const pool = new Pool(`http://127.0.0.1:${targetPort}`, { connections: 256 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/');
  let resume: (() => void) | undefined;
  res.on('drain', () => resume?.());
  pool.dispatch(
    { method: 'GET', path: `${url.pathname}${url.search}`, headers: { host: url.host } },
    {
      onConnect() {},
      onHeaders(status, raw, resumeBody) {
        resume = resumeBody;
        const out: http.OutgoingHttpHeaders = {};
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = String(raw[i]).toLowerCase();
          if (!HOP_BY_HOP.has(name)) out[name] = String(raw[i + 1]);
        }
        res.writeHead(status, out);
        return true;
      },
      onData: (chunk) => res.write(chunk),
      onComplete: () => res.end(),
      onError: () => res.destroy(),
    },
  );
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
