import http from 'node:http';
import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { NatproxError } from '../../errors.js';
import { bytesArrived, Heartbeat, type HeartbeatOptions } from '../../wire/heartbeat.js';
import { releaseOnPeerReset } from '../../wire/peer-reset.js';
import { dialTls, type ClientTls } from '../../wire/tls-connect.js';
import {
  CONNECTION_WINDOW_BYTES,
  encodeRegistration,
  MAX_SESSION_MEMORY_MIB,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_SETTINGS,
  TUNNEL_UPGRADE_TOKEN,
  type Registration,
} from '../../wire/protocol.js';
import { urlHostPort } from '../../util/host-port.js';
import { ignore } from '../../util/ignore.js';
import { readLimited } from '../../util/read-limited.js';

/** How much of a refusal's body the client keeps to report (the proxy's reason). */
const MAX_REFUSAL_BYTES = 2048;

export interface DialOptions {
  proxyUrl: URL;
  registration: Registration;
  token?: string | undefined;
  /** How to verify an https:// proxy (CA, pinning); system CAs otherwise. */
  tls?: ClientTls | undefined;
  /**
   * Connect to this address instead of resolving the URL's host (--connect-all-addresses).
   * The Host header, SNI and the certificate check still use the URL's host name.
   */
  address?: string | undefined;
  handshakeTimeoutMs: number;
  heartbeat: HeartbeatOptions;
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
  /** Gives up the dial (TCP, TLS or the upgrade) at once, rejecting with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** The client's end of an established tunnel. */
export interface TunnelConnection {
  readonly session: ServerHttp2Session;
  /**
   * Resolves with the reason once the tunnel takes no new scrapes (GOAWAY, error, close):
   * time to dial a new one. Scrapes in flight may still be finishing.
   */
  readonly closed: Promise<string>;
  /** Resolves once the connection itself is gone, in-flight scrapes included. */
  readonly finished: Promise<void>;
  /** Sends GOAWAY: the proxy opens no new scrapes; in-flight ones finish. */
  close(): void;
  destroy(): void;
}

/** The tunnel URL under the proxy URL's path, so a proxy behind a path prefix works. */
export function tunnelUrl(proxyUrl: URL): URL {
  const url = new URL(proxyUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${TUNNEL_PATH}`;
  url.search = '';
  url.username = '';
  url.password = '';
  return url;
}

/**
 * Opens the tunnel: an HTTP/1.1 request asking to upgrade, then, after 101, the roles
 * reverse and this side serves HTTP/2 on the same socket. A refusal rejects with the
 * proxy's status and reason; an aborted `signal` rejects with its reason.
 */
export async function dialTunnel(options: DialOptions): Promise<TunnelConnection> {
  const url = tunnelUrl(options.proxyUrl);
  const secure = url.protocol === 'https:';
  const { host: hostname, port } = urlHostPort(url);
  const { signal } = options;
  signal?.throwIfAborted();
  const tlsSocket = secure
    ? await dialTls(
        hostname,
        port,
        options.tls,
        options.handshakeTimeoutMs,
        options.address,
        signal,
      )
    : undefined;
  const headers: Record<string, string> = {
    connection: 'Upgrade',
    upgrade: TUNNEL_UPGRADE_TOKEN,
    [REGISTRATION_HEADER]: encodeRegistration(options.registration),
    'user-agent': `natprox-client/${options.registration.version}`,
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const requestOptions: http.RequestOptions = {
    method: 'GET',
    hostname: options.address ?? hostname,
    port,
    path: `${url.pathname}${url.search}`,
    headers: { host: url.host, ...headers },
    timeout: options.handshakeTimeoutMs,
    // createConnection is only used without an agent; agent: false would open a new socket.
    ...(tlsSocket ? { createConnection: () => tlsSocket } : { agent: false }),
  };

  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      tlsSocket?.destroy();
      reject(signal.reason);
      return;
    }
    const req = http.request(requestOptions);
    const onAbort = (): void => {
      req.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // Settled one way or another: the signal no longer concerns this dial.
    const unwatch = (): void => signal?.removeEventListener('abort', onAbort);
    const fail = (err: NatproxError): void => {
      unwatch();
      req.destroy();
      reject(err);
    };
    req.once('timeout', () =>
      fail(
        new NatproxError(
          'NATPROX_TUNNEL_FAILED',
          `no answer from ${url.host} within ${options.handshakeTimeoutMs} ms`,
        ),
      ),
    );
    req.once('error', (err) => {
      unwatch();
      reject(
        new NatproxError('NATPROX_TUNNEL_FAILED', `cannot reach ${url.host}: ${err.message}`, {
          cause: err,
        }),
      );
    });
    req.once('response', (res) => {
      // Not upgraded: read the proxy's reason (bounded) and report it. One that breaks off
      // is reported by the request's error or timeout.
      readLimited(res, MAX_REFUSAL_BYTES, { onOver: 'truncate', rest: 'drain' }).then((body) => {
        const reason = body.toString('utf8').trim() || res.statusMessage || '';
        const hint =
          res.statusCode === 200
            ? ' (an intermediary answered instead of passing the Upgrade through)'
            : '';
        fail(
          new NatproxError(
            'NATPROX_REGISTRATION_REJECTED',
            `proxy ${url.host} refused the tunnel: HTTP ${res.statusCode}: ${reason}${hint}`,
            { httpStatus: res.statusCode },
          ),
        );
      }, ignore);
    });
    req.once('upgrade', (res, socket: Socket, head: Buffer) => {
      unwatch();
      req.setTimeout(0);
      const upgrade = String(res.headers.upgrade ?? '').toLowerCase();
      if (upgrade !== TUNNEL_UPGRADE_TOKEN) {
        socket.destroy();
        reject(
          new NatproxError(
            'NATPROX_TUNNEL_FAILED',
            `proxy ${url.host} upgraded to "${upgrade}", expected "${TUNNEL_UPGRADE_TOKEN}"`,
          ),
        );
        return;
      }
      socket.setTimeout(0);
      socket.setNoDelay(true);
      if (head.length > 0) socket.unshift(head);
      resolve(serveTunnel(socket, options));
    });
    req.end();
  });
}

function serveTunnel(socket: Socket, options: DialOptions): TunnelConnection {
  const server = http2.createServer({
    settings: TUNNEL_SETTINGS,
    maxSessionMemory: MAX_SESSION_MEMORY_MIB,
  });
  server.setTimeout(0);
  let session: ServerHttp2Session | undefined;
  server.once('session', (created: ServerHttp2Session) => {
    session = created;
  });
  server.on('stream', (stream, headers) => {
    heartbeat.alive();
    releaseOnPeerReset(stream);
    options.onStream(stream, headers);
  });
  // The HTTP/2 server treats a TLS socket that negotiated "http/1.1" (as the upgrade
  // request did) as an HTTP/1 client; after the Upgrade this socket speaks HTTP/2.
  if ('alpnProtocol' in socket) (socket as TLSSocket).alpnProtocol = 'h2';
  server.emit('connection', socket);
  if (!session) throw new NatproxError('NATPROX_TUNNEL_FAILED', 'HTTP/2 session did not start');
  const h2 = session as ServerHttp2Session;
  try {
    h2.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
  } catch {
    // only the proxy receives bodies; a default window here costs nothing
  }

  let resolveClosed: (reason: string) => void = () => {};
  const closed = new Promise<string>((resolve) => {
    resolveClosed = resolve;
  });
  let reason: string | undefined;
  const end = (why: string): void => {
    if (reason !== undefined) return;
    reason = why;
    heartbeat.stop();
    resolveClosed(why);
  };
  const received = bytesArrived(socket);
  let proxyPinged = false;
  const heartbeat = new Heartbeat(
    (onPong) => {
      if (h2.destroyed) return;
      try {
        h2.ping((err) => {
          if (!err) onPong();
        });
      } catch {
        // unanswered pings pile up only when the peer is gone; the missed count tells
      }
    },
    (silentMs) => {
      end(`proxy did not answer heartbeats for ${silentMs} ms`);
      h2.destroy();
    },
    // Any bytes from the proxy (its WINDOW_UPDATEs while a body uploads) prove it alive: on
    // a slow uplink a ping waits behind the body in the socket buffer for longer than the
    // heartbeat allows. Except in an interval in which the proxy pinged: it pings only when
    // it has heard nothing from this side for an interval, so its ping says the way to it
    // may be dead (home to VPS dropped), and only an answer to this side's ping counts then.
    { ...options.heartbeat, pingWhileReceiving: true },
    () => {
      const arrived = received();
      const pinged = proxyPinged;
      proxyPinged = false;
      return arrived && !pinged;
    },
  );
  heartbeat.start();
  h2.on('ping', () => {
    proxyPinged = true;
  });
  h2.on('error', (err) => end(`tunnel error: ${err.message}`));
  h2.on('goaway', () => end('proxy closed the tunnel (GOAWAY)'));
  const finished = new Promise<void>((resolve) => {
    h2.once('close', resolve);
    socket.once('close', resolve);
  });
  h2.once('close', () => end('tunnel connection closed'));
  socket.once('close', () => end('tunnel connection closed'));
  return {
    session: h2,
    closed,
    finished,
    close: () => {
      if (!h2.closed) h2.close();
    },
    destroy: () => {
      end('closed by the client');
      h2.destroy();
    },
  };
}
