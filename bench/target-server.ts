/**
 * The scrape targets, in their own process so they do not share an event loop with the load
 * driver. Routes:
 *   /metrics      a 10 KiB Prometheus text body
 *   /bytes?n=N    N bytes of exposition text, streamed with back-pressure (federate-size bodies)
 *   /hang         accepts the request and never answers (tells the parent over IPC)
 *   /drip         answers 200 with 1 KiB of body, then stalls (tells the parent over IPC)
 * Prints nothing; sends {type:'listening', port} once it listens on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

function exposition(bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i += 1) {
    const line = `bench_series_total{instance="target",series="${i}",le="+Inf"} ${i * 7}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

const METRICS_10K = exposition(10 * 1024);
const CHUNK = exposition(256 * 1024);
const MAX_BYTES = 1024 * 1024 * 1024;

function send(message: object): void {
  process.send?.(message);
}

function streamBytes(res: http.ServerResponse, total: number): void {
  res.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4',
    'content-length': String(total),
  });
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      if (left === 0) {
        res.end(piece);
        return;
      }
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  res.once('close', () => {
    left = 0;
  });
  pump();
}

const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const url = new URL(req.url ?? '/', 'http://target');
  switch (url.pathname) {
    case '/metrics':
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4',
        'content-length': String(METRICS_10K.length),
      });
      res.end(METRICS_10K);
      return;
    case '/bytes': {
      const n = Number(url.searchParams.get('n') ?? '0');
      if (!Number.isInteger(n) || n < 0 || n > MAX_BYTES) {
        res.writeHead(400).end('n must be 0..1 GiB\n');
        return;
      }
      streamBytes(res, n);
      return;
    }
    case '/hang':
      send({ type: 'hang' });
      return;
    case '/drip':
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.write(METRICS_10K.subarray(0, 1024), () => send({ type: 'drip' }));
      return;
    default:
      res.writeHead(404).end('no such page\n');
  }
});
server.maxConnections = 50_000;
server.listen(0, '127.0.0.1', () => {
  send({ type: 'listening', port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
