/**
 * A scraper that runs inside the VPS namespace, driven by the test through stdin and stdout:
 * each stdin line is a JSON request, each stdout line the JSON outcome of one. It scrapes as
 * Prometheus does with proxy_url (absolute-form GET to the proxy, the scrape timeout header,
 * keep-alive connections) and tells a complete body from a cut one.
 *
 * Run as a script: node --import tsx scrape-agent.ts. Prints "agent ready" first.
 */
import http from 'node:http';
import { createInterface } from 'node:readline';

export interface AgentRequest {
  id: number;
  url: string;
  /** host:port of the proxy; without it the URL is fetched directly. */
  proxy?: string;
  deadlineMs: number;
  /** Give up (and report a hang) this long after the deadline. */
  graceMs?: number;
  /** Keep the body (for JSON answers such as /api/v1/clients). */
  keepBody?: boolean;
  /** Ask for an uncompressed body (to read it), not gzip as Prometheus does. */
  identity?: boolean;
}

export interface AgentResult {
  id: number;
  /** 0 when no response head arrived. */
  status: number;
  bytes: number;
  /** Response head after this many ms; -1 without one. */
  headMs: number;
  totalMs: number;
  /** complete: whole body (as long as Content-Length, if any); else why not. */
  outcome: 'complete' | 'cut' | 'error' | 'hung';
  error?: string;
  natproxError?: string;
  body?: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function scrape(request: AgentRequest): Promise<AgentResult> {
  const startedAt = performance.now();
  const elapsed = (): number => Math.round(performance.now() - startedAt);
  const target = new URL(request.url);
  const [proxyHost, proxyPort] = request.proxy
    ? [request.proxy.slice(0, request.proxy.lastIndexOf(':')), Number(request.proxy.split(':').pop())] // prettier-ignore
    : [target.hostname, Number(target.port || 80)];
  return new Promise((resolve) => {
    let settled = false;
    let status = 0;
    let headMs = -1;
    let bytes = 0;
    const chunks: Buffer[] = [];
    const finish = (outcome: AgentResult['outcome'], error?: string, extra = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(hangTimer);
      resolve({ id: request.id, status, bytes, headMs, totalMs: elapsed(), outcome, ...(error ? { error } : {}), ...extra }); // prettier-ignore
    };
    const req = http.request({
      host: proxyHost,
      port: proxyPort,
      method: 'GET',
      path: request.proxy ? request.url : `${target.pathname}${target.search}`,
      agent,
      headers: {
        host: target.host,
        'x-prometheus-scrape-timeout-seconds': String(request.deadlineMs / 1000),
        accept: 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
        // As Prometheus asks; the body is counted as it arrives, not decompressed.
        'accept-encoding': request.identity ? 'identity' : 'gzip',
      },
    });
    const hangTimer = setTimeout(
      () => {
        finish(
          'hung',
          `no end ${request.deadlineMs + (request.graceMs ?? 5000)} ms after the start`,
        );
        req.destroy();
      },
      request.deadlineMs + (request.graceMs ?? 5000),
    );
    req.once('error', (err) => finish(status === 0 ? 'error' : 'cut', err.message));
    req.once('response', (res) => {
      status = res.statusCode ?? 0;
      headMs = elapsed();
      const natproxError = res.headers['x-natprox-error'];
      const length = res.headers['content-length'];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (request.keepBody) chunks.push(chunk);
      });
      res.once('aborted', () => finish('cut', 'response aborted'));
      res.once('error', (err) => finish('cut', err.message));
      res.once('end', () => {
        const whole = length === undefined || Number(length) === bytes;
        finish(whole ? 'complete' : 'cut', whole ? undefined : `${bytes} of ${length} bytes`, {
          ...(typeof natproxError === 'string' ? { natproxError } : {}),
          ...(request.keepBody ? { body: Buffer.concat(chunks).toString('utf8') } : {}),
        });
      });
    });
    req.end();
  });
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const request = JSON.parse(line) as AgentRequest;
  void scrape(request).then((result) => process.stdout.write(`${JSON.stringify(result)}\n`));
});
lines.once('close', () => {
  agent.destroy();
  process.exit(0);
});
console.log('agent ready');
