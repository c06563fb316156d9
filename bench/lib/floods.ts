/**
 * Peers that flood a natprox proxy, for the floods benchmark and the tests of its limits:
 * pipelined requests on raw connections, a tunnel that sends nothing but HTTP/2
 * WINDOW_UPDATE frames, and scrapes whose scraper never reads. Each runs until stopped and
 * reopens its connection when the proxy closes it, as an attacker would.
 */
import net from 'node:net';
import {
  encodeRegistration,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE_TOKEN,
} from '../../src/wire/protocol.js';

export interface Flood {
  /** Connections opened so far (the first and every reopening). */
  readonly connections: number;
  /** Connections the proxy closed. */
  readonly closedByProxy: number;
  stop(): void;
}

/** One HTTP/1.1 request, as a pipelining peer writes it many times over. */
export function requestText(path: string, headers: Record<string, string> = {}): string {
  const lines = Object.entries({ host: '127.0.0.1', ...headers }).map(([k, v]) => `${k}: ${v}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Opens a connection with `open`, writes `chunk()` whenever the socket can take more and
 * reads (and drops) whatever comes back; reopens when the proxy closes it, until stopped.
 * `ready` lets a peer do its own handshake before the flood starts.
 */
function floodLoop(
  open: () => net.Socket,
  chunk: Buffer,
  ready: (socket: net.Socket, start: () => void) => void = (_socket, start) => start(),
  reopenDelayMs = 0,
): Flood {
  let stopped = false;
  let connections = 0;
  let closedByProxy = 0;
  let current: net.Socket | undefined;
  const connect = (): void => {
    if (stopped) return;
    connections += 1;
    const socket = open();
    current = socket;
    const pump = (): void => {
      while (!stopped && !socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', pump);
    socket.on('error', () => {});
    socket.once('close', () => {
      if (stopped) return;
      closedByProxy += 1;
      setTimeout(connect, reopenDelayMs);
    });
    ready(socket, pump);
  };
  connect();
  return {
    get connections() {
      return connections;
    },
    get closedByProxy() {
      return closedByProxy;
    },
    stop() {
      stopped = true;
      current?.destroy();
    },
  };
}

/**
 * Where floods come from: another loopback address than the good peers' 127.0.0.1, as an
 * attacker's differs from a Prometheus's (the proxy refuses an address that flooded).
 */
export const FLOOD_ADDRESS = '127.0.0.2';

/** Pipelines `request` on one connection to 127.0.0.1:`port`, in writes of `batch` requests. */
export function pipelineFlood(
  port: number,
  request: string,
  batch = 256,
  from = FLOOD_ADDRESS,
): Flood {
  const chunk = Buffer.from(request.repeat(batch), 'latin1');
  return floodLoop(
    () => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
      socket.resume();
      return socket;
    },
    chunk,
    (socket, start) => socket.once('connect', start),
  );
}

/** A 9-byte HTTP/2 frame header and its payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

const SETTINGS = 0x4;
const WINDOW_UPDATE = 0x8;
const ACK = 0x1;

/** A WINDOW_UPDATE on the connection (stream 0) raising its window by `increment`. */
export function windowUpdate(increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return h2Frame(WINDOW_UPDATE, 0, 0, payload);
}

/**
 * Registers `name` through the tunnel upgrade, answers the proxy's HTTP/2 preface as a
 * client would (its SETTINGS and an ACK of the proxy's), then sends nothing but
 * WINDOW_UPDATE frames of increment 1, 5,000 per write: legal, and never answered.
 */
export function windowUpdateFlood(
  port: number,
  name: string,
  token?: string,
  reopenDelayMs = 50,
  from = FLOOD_ADDRESS,
): Flood {
  const registration = encodeRegistration({
    names: [name],
    labels: {},
    ports: [9],
    version: 'flood',
  });
  const upgrade =
    `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n` +
    `Upgrade: ${TUNNEL_UPGRADE_TOKEN}\r\n${REGISTRATION_HEADER}: ${registration}\r\n` +
    `${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`;
  const frame = windowUpdate(1);
  const chunk = Buffer.concat(Array.from({ length: 5000 }, () => frame));
  return floodLoop(
    () => net.connect({ host: '127.0.0.1', port, localAddress: from }),
    chunk,
    (socket, start) => {
      socket.once('connect', () => socket.write(upgrade));
      let head = '';
      const onData = (data: Buffer): void => {
        head += data.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return;
        }
        socket.resume();
        socket.write(
          Buffer.concat([
            h2Frame(SETTINGS, 0, 0, Buffer.alloc(0)),
            h2Frame(SETTINGS, ACK, 0, Buffer.alloc(0)),
          ]),
        );
        start();
      };
      socket.on('data', onData);
    },
    reopenDelayMs,
  );
}

/**
 * `count` scrapes of `url` through the proxy whose scraper never reads the answer: each
 * holds its stream until the scrape deadline. Resolves once all are sent; stop() closes them.
 */
export function nonReadingScrapes(
  port: number,
  url: string,
  count: number,
  headers: Record<string, string> = {},
): { sockets: net.Socket[]; stop(): void } {
  const { host } = new URL(url);
  const request = requestText(url, { ...headers, host });
  const sockets = Array.from({ length: count }, () => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(request));
    socket.on('error', () => {});
    socket.pause();
    return socket;
  });
  return {
    sockets,
    stop() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
