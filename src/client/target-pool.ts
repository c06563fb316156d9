import type { ClientRequest, IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { ignore } from '../util/ignore.js';

/**
 * How long an idle connection is kept when the target does not say (undici's default, which
 * natprox used before): shorter than exporters' own idle timeouts, so a reused connection is
 * rarely one the target is closing at that moment.
 */
export const IDLE_CONNECTION_MS = 4000;
/** A target's `Keep-Alive: timeout=N` keeps a connection until this much before N. */
const KEEP_ALIVE_MARGIN_MS = 1000;
/** The longest a target's Keep-Alive timeout keeps an idle connection (undici's cap). */
const MAX_IDLE_CONNECTION_MS = 600_000;
/** Connections per target origin; more concurrent fetches wait for one to come free. */
export const MAX_CONNECTIONS_PER_ORIGIN = 256;

/** What node:http passes to an agent's addRequest, of what natprox sets. */
interface RequestOptions {
  host?: string | null;
  port?: number | string | null;
  servername?: string;
}

/** node:http's socket fields an agent reads (Node's own Agent does the same). */
interface HttpSocket extends Socket {
  _httpMessage?: { res?: IncomingMessage | null } | null;
}

/** The connections to one host, port and TLS server name. */
interface Origin {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly servername: string | undefined;
  readonly sockets: Set<Socket>;
  /** Most recently freed last: the next fetch takes it, and in a quiet spell the rest idle out. */
  readonly idle: Socket[];
  readonly waiting: ClientRequest[];
}

/**
 * Keep-alive connections to local targets, as node:http's `agent` option: what Node's Agent
 * does that natprox needs, and no more. Node's Agent costed 10-15 µs of CPU per fetch more
 * (it copies the request options twice into dictionary objects, re-arms TCP keep-alive with a
 * system call and resets the async context of every reused socket). node:http drives it
 * through `addRequest(request)` (hand the request a socket with `request.onSocket`, now or
 * when one comes free) and the socket's 'free' event (the exchange on it is over and the
 * connection may be reused).
 */
export class TargetPool {
  // What node:http reads of an agent: it keeps connections alive, has no timeout of its own.
  readonly keepAlive = true;
  readonly maxSockets = MAX_CONNECTIONS_PER_ORIGIN;
  readonly options = {};
  private readonly origins = new Map<string, Origin>();
  private closed = false;

  constructor(
    readonly protocol: 'http:' | 'https:',
    readonly defaultPort: number,
  ) {}

  addRequest(request: ClientRequest, options: RequestOptions): void {
    if (this.closed) {
      // As Node's Agent reports a failed connection: the request's 'error' event.
      const onSocket = request.onSocket as (socket: Socket | null, err: Error) => void;
      onSocket.call(request, null, new Error('the client is closing its local connections'));
      return;
    }
    const origin = this.originOf(options);
    const socket = takeIdle(origin);
    if (socket !== undefined) {
      socket.ref();
      request.onSocket(socket);
    } else if (origin.sockets.size < MAX_CONNECTIONS_PER_ORIGIN) {
      request.onSocket(this.connect(origin));
    } else {
      origin.waiting.push(request);
    }
  }

  /**
   * Closes every connection and drops the requests waiting for one (LocalTargets stops
   * their fetches first).
   */
  destroy(): void {
    this.closed = true;
    for (const origin of this.origins.values()) {
      for (const socket of origin.sockets) socket.destroy();
      for (const request of origin.waiting.splice(0)) request.destroy();
    }
    this.origins.clear();
  }

  private originOf(options: RequestOptions): Origin {
    const host = String(options.host);
    const port = Number(options.port);
    const servername = this.protocol === 'https:' ? (options.servername ?? '') : undefined;
    const key = `${host}|${port}|${servername ?? ''}`;
    let origin = this.origins.get(key);
    if (origin === undefined) {
      origin = { key, host, port, servername, sockets: new Set(), idle: [], waiting: [] };
      this.origins.set(key, origin);
    }
    return origin;
  }

  private connect(origin: Origin): Socket {
    const { host, port, servername } = origin;
    // servername '' (an IP address was scraped): no SNI, and the target's address is verified.
    const socket: HttpSocket =
      servername === undefined
        ? net.connect({ host, port })
        : tls.connect({ host, port, servername: servername || undefined });
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_CONNECTION_MS);
    origin.sockets.add(socket);
    // node:http listens while a request uses the socket; an idle one needs a listener too.
    socket.on('error', ignore);
    socket.on('free', () => {
      if (this.closed || socket.destroyed || !socket.writable) {
        socket.destroy();
        return;
      }
      const next = origin.waiting.shift();
      if (next !== undefined) {
        next.onSocket(socket);
        return;
      }
      const idleMs = idleTimeout(socket);
      if (idleMs <= 0) {
        socket.destroy();
        return;
      }
      if (socket.timeout !== idleMs) socket.setTimeout(idleMs);
      socket._httpMessage = null; // lets the last request and response go
      socket.unref(); // an idle connection does not keep the process alive
      origin.idle.push(socket);
    });
    // On a busy connection the timer fires too; natprox's own deadline ends a fetch.
    socket.on('timeout', () => {
      if (origin.idle.includes(socket)) socket.destroy();
    });
    // node:http takes a socket out of the pool for good (an Upgrade answer) with this event.
    socket.once('agentRemove', () => this.forget(origin, socket));
    socket.once('close', () => this.forget(origin, socket));
    return socket;
  }

  private forget(origin: Origin, socket: Socket): void {
    if (!origin.sockets.delete(socket)) return;
    const at = origin.idle.indexOf(socket);
    if (at >= 0) origin.idle.splice(at, 1);
    const next = origin.waiting.shift();
    if (next !== undefined && !this.closed) next.onSocket(this.connect(origin));
    else if (origin.sockets.size === 0 && this.origins.get(origin.key) === origin) {
      this.origins.delete(origin.key);
    }
  }
}

function takeIdle(origin: Origin): Socket | undefined {
  let socket = origin.idle.pop();
  while (socket !== undefined && socket.destroyed) socket = origin.idle.pop();
  return socket;
}

/**
 * How long the connection may idle: until a second before the timeout the target announced
 * (`Keep-Alive: timeout=N`, as undici does; a target at Node's default says 5 s, the bench's
 * 30 s), else IDLE_CONNECTION_MS. 0: do not keep it.
 */
function idleTimeout(socket: HttpSocket): number {
  const hint = socket._httpMessage?.res?.headers['keep-alive'];
  const seconds = typeof hint === 'string' ? /^timeout=(\d+)/.exec(hint)?.[1] : undefined;
  if (seconds === undefined) return IDLE_CONNECTION_MS;
  return Math.min(
    MAX_IDLE_CONNECTION_MS,
    Math.max(0, Number(seconds) * 1000 - KEEP_ALIVE_MARGIN_MS),
  );
}
