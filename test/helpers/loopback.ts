/**
 * Shared test fixtures: real servers on loopback, port 0, and real natprox processes.
 * Every fixture registers its own teardown with the `after` hook it is given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  NatproxClient,
  NatproxProxy,
  type ClientOptions,
  type ProxyOptions,
} from '../../src/index.js';

export const BIN = fileURLToPath(new URL('../../bin/natprox.js', import.meta.url));

type Teardown = (fn: () => unknown) => void;

export async function startTarget(
  handler: RequestListener,
  teardown: Teardown,
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export async function startProxy(
  teardown: Teardown,
  options: Partial<ProxyOptions> = {},
): Promise<{ proxy: NatproxProxy; port: number; url: string }> {
  const proxy = new NatproxProxy({
    listen: { host: '127.0.0.1', port: 0 },
    defaultScrapeTimeoutMs: 5000,
    maxScrapeTimeoutMs: 60_000,
    ...options,
  });
  const { port } = await proxy.listen();
  teardown(() => proxy.shutdown(0));
  return { proxy, port, url: `http://127.0.0.1:${port}` };
}

export async function startClient(
  teardown: Teardown,
  options: Partial<ClientOptions> & Pick<ClientOptions, 'proxyUrl' | 'allow'>,
): Promise<NatproxClient> {
  const client = new NatproxClient({ names: ['demo'], ...options });
  client.start();
  teardown(() => client.stop(0));
  await client.waitConnected();
  return client;
}

export interface ScrapeResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Sends an absolute-form forward-proxy request, exactly as Prometheus does with proxy_url. */
export function scrapeThrough(
  proxyPort: number,
  targetUrl: string,
  headers: Record<string, string> = {},
  agent: http.Agent | false = false,
): Promise<ScrapeResult> {
  const { host } = new URL(targetUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'GET',
      path: targetUrl,
      headers: { host, ...headers },
      agent,
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.end();
  });
}

/** A plain GET of a path on the proxy (operator interface). */
export function getPath(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<ScrapeResult> {
  return scrapeThrough(port, `http://127.0.0.1:${port}${path}`, headers).catch((err) => {
    throw err;
  });
}

export interface NatproxProcess {
  child: ChildProcess;
  /** Everything the process has written to stderr (its logs) and stdout so far. */
  output(): string;
  /** Resolves when a log line matching `pattern` appears (or rejects after `timeoutMs`). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `natprox ARGS` as a real process, logging at debug level as JSON lines. */
export function spawnNatprox(
  args: string[],
  teardown: Teardown,
  env: NodeJS.ProcessEnv = {},
): NatproxProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, NATPROX_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    for (const waiter of [...waiters]) {
      const match = text.split('\n').find((line) => waiter.pattern.test(line));
      if (match !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  teardown(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });
  return {
    child,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 10_000) {
      const existing = text.split('\n').find((line) => pattern.test(line));
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${text}`));
        }, timeoutMs);
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
  };
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). For state seen from outside only. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
