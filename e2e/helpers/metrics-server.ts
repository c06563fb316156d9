/**
 * A home target with a large exposition, as a federate endpoint of a busy Prometheus gives:
 * GET /big answers `--big-bytes` bytes of metrics text with a Content-Length, written as fast
 * as the connection takes them. Run inside the home namespace as a script:
 * node --import tsx metrics-server.ts --listen HOST:PORT --big-bytes N
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, 'big-bytes': { type: 'string', default: '5242880' } },
});
const listen = values.listen ?? '127.0.0.1:0';
const size = Number(values['big-bytes']);
const line = (i: number): string =>
  `federated_series_total{job="home",instance="host-${i % 1000}:9100",series="${i}"} ${i} 1700000000000\n`;
const parts: string[] = [];
let length = 0;
for (let i = 0; length < size; i++) {
  const text = line(i);
  parts.push(text);
  length += text.length;
}
const big = Buffer.from(parts.join('')).subarray(0, size);

const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/big')) {
    res.writeHead(200, {
      'content-type': 'text/plain; version=0.0.4',
      'content-length': big.length,
    });
    res.end(big);
    return;
  }
  res.writeHead(404).end();
});
const at = listen.lastIndexOf(':');
server.listen(Number(listen.slice(at + 1)), listen.slice(0, at), () => {
  console.log(`metrics server listening on ${listen} with ${big.length} bytes at /big`);
});
process.once('SIGTERM', () => process.exit(0));
