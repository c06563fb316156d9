import net from 'node:net';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { formatHostPort } from '../../util/host-port.js';
import { ignore } from '../../util/ignore.js';
import { DEADLINE_HEADER } from '../../wire/protocol.js';
import type { Allowlist } from '../allowlist.js';
import type { ClientEvents } from '../client-events.js';
import { parseAuthority, refuseStream } from './stream-reply.js';
import { reportRefusal, servedReporter } from '../served-reporter.js';

const { NGHTTP2_REFUSED_STREAM } = constants;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** The first byte of a TLS record carrying a handshake: what a ClientHello starts with. */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Serves CONNECT streams (scrapes of https targets): connects to the allowlisted target
 * and relays bytes both ways, so TLS runs end to end between the scraper and the target.
 */
export class HttpsConnectExecutor {
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly allowlist: Allowlist,
    private readonly events: ClientEvents,
  ) {}

  close(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const { name, port } = parseAuthority(String(headers[':authority'] ?? ''));
    let bytes = 0;
    const report = servedReporter(this.events, { name, port, path: '' }, () => bytes);
    stream.on('error', ignore);
    if (!this.names.has(name)) {
      const reason = `this client does not serve "${name}"`;
      refuseStream(stream, 'NATPROX_MISDIRECTED', reason);
      reportRefusal(report, 'NATPROX_MISDIRECTED', reason);
      return;
    }
    const decision = this.allowlist.checkConnect(port);
    if (!decision.allowed) {
      refuseStream(stream, 'NATPROX_TARGET_FORBIDDEN', decision.reason);
      reportRefusal(report, 'NATPROX_TARGET_FORBIDDEN', decision.reason);
      return;
    }
    const { host } = decision.target;
    const where = formatHostPort(host, port);
    const timeoutMs = Number(headers[DEADLINE_HEADER]) || DEFAULT_CONNECT_TIMEOUT_MS;
    const socket = net.connect({ host, port, timeout: timeoutMs });
    this.sockets.add(socket);
    let connected = false;
    let refused = false;
    socket.once('timeout', () => {
      if (!connected) socket.destroy(new Error(`no connection within ${timeoutMs} ms`));
    });
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      socket.setNoDelay(true);
      if (stream.closed) {
        socket.destroy();
        return;
      }
      stream.respond({ ':status': 200 });
      const count = (chunk: Buffer): void => {
        bytes += chunk.length;
      };
      socket.on('data', count);
      stream.on('data', count);
      socket.pipe(stream);
      // The client cannot see methods or paths inside CONNECT, so only TLS may pass (what
      // `scheme: https` sends): a proxy must not write a plain-HTTP POST through it to a
      // target the allowlist grants GET only.
      stream.once('data', (first: Buffer) => {
        if (first[0] === TLS_HANDSHAKE_RECORD) {
          socket.write(first);
          stream.pipe(socket);
          return;
        }
        refused = true;
        const reason = `the CONNECT stream to ${where} did not start with a TLS handshake; only https targets are reached through CONNECT (plain HTTP goes as GET http://NAME:PORT/…, where methods and paths are checked)`;
        reportRefusal(report, 'NATPROX_TARGET_FORBIDDEN', reason);
        socket.destroy();
        stream.close(NGHTTP2_REFUSED_STREAM);
      });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (connected) return;
      const reason = `connecting to ${where} failed: ${err.code ?? err.message}`;
      refuseStream(stream, 'NATPROX_TARGET_FAILED', reason);
      reportRefusal(report, 'NATPROX_TARGET_FAILED', reason);
    });
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (!stream.closed) stream.close();
      if (connected && !refused) report('ok', 200);
    });
    stream.once('close', () => socket.destroy());
  }
}
