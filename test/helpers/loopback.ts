/**
 * Shared test fixtures: real servers on loopback, port 0, and real natprox processes.
 * Every fixture registers its own teardown with the `after` hook it is given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import net, { type AddressInfo } from 'node:net';
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

/** A target that counts the connections it accepted and keeps the ones still open in `open`. */
export async function countingTarget(
  teardown: Teardown,
  handler: RequestListener,
): Promise<{ server: http.Server; port: number; open: Set<net.Socket>; opened: () => number }> {
  const target = await startTarget(handler, teardown);
  const open = new Set<net.Socket>();
  let opened = 0;
  target.server.on('connection', (socket: net.Socket) => {
    opened += 1;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return { ...target, open, opened: () => opened };
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
      readBody(res).then(
        (body) =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString() }),
        reject,
      );
    });
    req.end();
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

/** Like startTarget, but on a chosen loopback address (127.0.0.2, ::1, ...). */
export async function startTargetOn(
  host: string,
  handler: RequestListener,
  teardown: Teardown,
  port = 0,
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** A port on `host` where nothing listens any more: bound by a server that is then closed. */
export async function deadPort(host = '127.0.0.1'): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface OpenScrape {
  req: http.ClientRequest;
  /** Resolves with the response head; the body is left unread for the caller. */
  response: Promise<http.IncomingMessage>;
}

/**
 * Starts an absolute-form forward-proxy request (as Prometheus does) and hands back the live
 * request and response, for tests that read, pause or abort mid-body.
 */
export function openScrape(
  proxy: { host?: string; port: number },
  targetUrl: string,
  headers: Record<string, string> = {},
): OpenScrape {
  const { host } = new URL(targetUrl);
  const req = http.request({
    host: proxy.host ?? '127.0.0.1',
    port: proxy.port,
    method: 'GET',
    path: targetUrl,
    headers: { host, ...headers },
    agent: false,
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', resolve);
  });
  // A test that aborts on purpose may never await `response`.
  response.catch(() => {});
  req.end();
  return { req, response };
}

/** Reads a whole body as raw bytes. */
export function readBody(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('response aborted')));
    res.once('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** Rejects with a message naming `what` if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The value of one sample in a Prometheus text exposition, e.g.
 * `metricValue(text, 'natprox_scrapes_total', { outcome: 'ok' })`; undefined when absent.
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const present: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      present[pair[1] as string] = pair[2] as string;
    }
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

/**
 * An origin-form GET of a path on the proxy (`GET /metrics`), as an operator or a Prometheus
 * scraping the proxy itself sends it; `host` picks the proxy's address (default 127.0.0.1).
 */
export function getOrigin(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  host = '127.0.0.1',
): Promise<ScrapeResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method: 'GET', path, headers, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      readBody(res).then(
        (body) =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString() }),
        reject,
      );
    });
    req.end();
  });
}

export interface Relay {
  port: number;
  /** Connections relayed so far. */
  readonly connections: number;
  /**
   * Cuts every relayed connection: 'close' ends both sockets as the kernel does when a process
   * dies (FIN), 'reset' aborts them (RST) as a middlebox dropping the connection would.
   */
  cut(how: 'close' | 'reset'): void;
  /**
   * Answers every relayed connection with `response` (raw HTTP, e.g. a load balancer's HTML
   * 504 when its idle timeout fires) and drops the upstream side; returns how many it cut.
   */
  cutWith(response: string): number;
}

/** A TCP relay on 127.0.0.1 to `to`, so a test can cut a connection from outside both ends. */
export async function startRelay(
  to: { host?: string; port: number },
  teardown: Teardown,
): Promise<Relay> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let connections = 0;
  const server = net.createServer((inbound) => {
    connections += 1;
    const outbound = net.connect({ host: to.host ?? '127.0.0.1', port: to.port });
    const pair: [net.Socket, net.Socket] = [inbound, outbound];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cut = (how: 'close' | 'reset'): void => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      for (const socket of pair) {
        if (how === 'reset') socket.resetAndDestroy();
        else socket.destroy();
      }
    }
  };
  const cutWith = (response: string): number => {
    const open = [...pairs];
    for (const pair of open) {
      pairs.delete(pair);
      const [inbound, outbound] = pair;
      outbound.unpipe(inbound);
      outbound.destroy();
      inbound.end(response);
    }
    return open.length;
  };
  teardown(() => {
    cut('reset');
    server.close();
  });
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    cut,
    cutWith,
  };
}
