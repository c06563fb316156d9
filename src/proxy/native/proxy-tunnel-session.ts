import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import { NatproxError } from '../../errors.js';
import { ignore } from '../../util/ignore.js';
import type { CancelSignal } from '../../util/scrape-cancel.js';
import type {
  ClientSession,
  HttpsConnectRequest,
  HttpsConnectResponse,
  ScrapeRequest,
  ScrapeResponse,
} from '../client-session.js';
import { ControlBudget, controlBudgets, DATA_FRAME_ALLOWANCE_BYTES } from './control-budget.js';
import {
  announceLengthCounting,
  streamComplete,
  trailersMarkComplete,
} from '../../wire/body-completion.js';
import { bytesArrived, Heartbeat, type HeartbeatOptions } from '../../wire/heartbeat.js';
import {
  CONNECTION_WINDOW_BYTES,
  DEADLINE_HEADER,
  ERROR_CODE_HEADER,
  MAX_SESSION_MEMORY_MIB,
  TUNNEL_SETTINGS,
  type Registration,
} from '../../wire/protocol.js';

const { NGHTTP2_CANCEL, NGHTTP2_DEFAULT_WEIGHT } = http2.constants;

/**
 * Stream options with the priority fields request() would otherwise add to its copy of
 * them, one at a time, on every scrape (2-3 µs per stream in CPU profiles of the proxy).
 */
const PRIORITY_DEFAULTS = {
  weight: NGHTTP2_DEFAULT_WEIGHT,
  parent: 0,
  exclusive: false,
  silent: false,
};
const ENDED_REQUEST = { endStream: true, ...PRIORITY_DEFAULTS };
const OPEN_REQUEST = { endStream: false, ...PRIORITY_DEFAULTS };
/** How long the proxy waits for a client to close its tunnel once the proxy closed it. */
export const CLIENT_CLOSE_WAIT_MS = 1000;
/** Default of max_tunnel_control_bytes_per_second (see ControlBudget). */
export const DEFAULT_CONTROL_BYTES_PER_SECOND = 256 * 1024;

/** What a tunnel may send beyond its scrapes' needs, and who hears when it sent more. */
export interface ControlLimit {
  /** Read at every check: a config reload changes it. */
  bytesPerSecond: () => number;
  /** Called once, before the session closes itself, with the reason. */
  onExceeded?: (reason: string) => void;
}

const DEFAULT_CONTROL_LIMIT: ControlLimit = {
  bytesPerSecond: () => DEFAULT_CONTROL_BYTES_PER_SECOND,
};

/**
 * The proxy's end of a native tunnel. After the Upgrade the roles reverse: the proxy is the
 * HTTP/2 client on the socket the natprox client opened, and each scrape is one stream.
 */
export class ProxyTunnelSession implements ClientSession {
  readonly id = randomUUID();
  readonly transport = 'native' as const;
  readonly connectedAt = new Date();
  private readonly h2: ClientHttp2Session;
  private readonly heartbeat: Heartbeat;
  private readonly budget: ControlBudget;
  private closeReason: string | undefined;
  private readonly closeListeners: Array<(reason: string) => void> = [];

  constructor(
    private readonly socket: Duplex,
    readonly registration: Registration,
    readonly remoteAddress: string,
    readonly grantKey: string | undefined,
    heartbeatOptions: HeartbeatOptions,
    control: ControlLimit = DEFAULT_CONTROL_LIMIT,
  ) {
    this.h2 = http2.connect('http://natprox-client', {
      createConnection: () => socket,
      settings: TUNNEL_SETTINGS,
      maxSessionMemory: MAX_SESSION_MEMORY_MIB,
    });
    this.h2.once('connect', () => this.h2.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
    this.h2.on('error', (err) => this.markClosed(`tunnel error: ${err.message}`));
    this.h2.on('goaway', () => this.markClosed('client is shutting down (GOAWAY)'));
    this.h2.once('close', () => this.markClosed('tunnel connection closed'));
    // A session that closed ends its side of the socket and then waits for the client's FIN
    // (its 'close' comes only then): a client that never sends it, stuck or misbehaving,
    // must not hold the socket for good.
    socket.once('finish', () => {
      setTimeout(() => socket.destroy(), CLIENT_CLOSE_WAIT_MS).unref();
    });
    // The HTTP server hands over sockets that allow half-open connections, and HTTP/2 does
    // not react to the peer's FIN: without this a client that went away would hold its
    // in-flight scrapes until their deadlines.
    socket.once('end', () => this.destroy('client closed the tunnel connection'));
    this.heartbeat = new Heartbeat(
      (onPong) => {
        if (this.h2.destroyed) return;
        try {
          this.h2.ping((err) => {
            if (!err) onPong();
          });
        } catch {
          // too many unanswered pings already; the missed count will tell
        }
      },
      (silentMs) => {
        this.markClosed(`no heartbeat answer for ${silentMs} ms`);
        this.h2.destroy();
      },
      { ...heartbeatOptions, passive: true },
      bytesArrived(socket),
    );
    this.heartbeat.start();
    this.budget = new ControlBudget(socket, control.bytesPerSecond, (reason) => {
      control.onExceeded?.(reason);
      this.destroy(`tunnel flood: ${reason}`);
    });
    controlBudgets.add(this.budget);
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  scrape(request: ScrapeRequest, signal: CancelSignal): Promise<ScrapeResponse> {
    // A HEAD goes as a GET, as it always has: the scraper's response drops the body, and
    // every client answers a GET stream completely (the allowlist grants HEAD with GET).
    const method =
      request.method === undefined || request.method === 'HEAD' ? 'GET' : request.method;
    // Object.assign, not a spread followed by more keys: V8 takes a slow path for those.
    const headers: OutgoingHttpHeaders = Object.assign(
      {
        ':method': method,
        ':scheme': 'http',
        ':authority': `${request.name}:${request.port}`,
        ':path': request.pathAndQuery,
      },
      request.headers,
    );
    headers[DEADLINE_HEADER] = String(Math.max(1, Math.round(request.deadlineMs)));
    // The scrape handler counts the body against its Content-Length (see body-completion).
    announceLengthCounting(headers);
    return this.openStream(headers, request.body === undefined, signal, request.body);
  }

  httpsConnect(request: HttpsConnectRequest, signal: CancelSignal): Promise<HttpsConnectResponse> {
    return this.openStream(
      {
        ':method': 'CONNECT',
        ':authority': `${request.name}:${request.port}`,
        [DEADLINE_HEADER]: String(Math.max(1, Math.round(request.connectTimeoutMs))),
      },
      false,
      signal,
    );
  }

  /**
   * Opens one stream and resolves with the response head; the stream is the body (and, for
   * CONNECT, the way back). Rejects with NATPROX_CLIENT_LOST, or the signal's reason.
   */
  private openStream(
    headers: OutgoingHttpHeaders,
    endStream: boolean,
    signal: CancelSignal,
    body?: Readable,
  ): Promise<HttpsConnectResponse> {
    if (this.closed) {
      return Promise.reject(
        new NatproxError('NATPROX_CLIENT_LOST', `client connection is closed: ${this.closeReason}`),
      );
    }
    return new Promise((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = this.h2.request(headers, endStream ? ENDED_REQUEST : OPEN_REQUEST);
      } catch (err) {
        reject(new NatproxError('NATPROX_CLIENT_LOST', 'could not open a stream', { cause: err }));
        return;
      }
      this.budget.streamOpened();
      const data = countData(stream, this.budget);
      // A request body streams on the stream with HTTP/2 flow control; it stops (unpiped)
      // when the stream closes, which a cancellation or the deadline does.
      if (body) body.pipe(stream);
      let responded = false;
      const onAbort = (): void => {
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
        if (!responded) reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // `on`, not `once`, for events a stream emits once: no wrapper to make and remove on
      // every scrape. They go when the stream closes: Node keeps a closed stream reachable
      // from its native handle until a full garbage collection, and through them the rest
      // of the scrape (with 10,000 tunnels, much of what the proxy promoted to old space).
      const onClose = (): void => {
        stream.off('close', onClose);
        stream.off('trailers', onTrailers);
        stream.off('response', onResponse);
        signal.removeEventListener('abort', onAbort);
        this.budget.streamClosed(data.ended);
        if (!responded && !signal.aborted) {
          reject(
            new NatproxError(
              'NATPROX_CLIENT_LOST',
              this.closeReason
                ? `client connection lost mid-scrape: ${this.closeReason}`
                : `client reset the stream (code ${stream.rstCode})`,
            ),
          );
        }
      };
      // After the response head, errors surface on the body stream for the caller.
      stream.on('error', ignore);
      // Whether the body is whole, as body-completion says for the native tunnel; a body
      // with a Content-Length the scrape handler counts itself.
      let ended = false;
      const onTrailers = (trailers: IncomingHttpHeaders): void => {
        ended = trailersMarkComplete(trailers);
      };
      const onResponse = (responseHeaders: IncomingHttpHeaders): void => {
        responded = true;
        const status = Number(responseHeaders[':status']);
        const ownAnswer = responseHeaders[ERROR_CODE_HEADER] !== undefined;
        resolve({
          status,
          headers: responseHeaders,
          body: stream,
          complete: () => streamComplete(ended, ownAnswer),
          // CANCEL, not the NO_ERROR of a plain destroy(): the client must not take the
          // stream's end for a delivered body.
          cancel: () => {
            if (!stream.closed) stream.close(NGHTTP2_CANCEL);
            stream.destroy();
          },
        });
      };
      stream.on('close', onClose);
      stream.on('trailers', onTrailers);
      stream.on('response', onResponse);
      if (signal.aborted) onAbort();
    });
  }

  close(reason: string): void {
    this.markClosed(reason);
    if (!this.h2.destroyed) this.h2.close();
  }

  /**
   * Tears the connection down at once, in-flight streams included. The socket too: after a
   * close() the session would only end its side and wait for the client's.
   */
  destroy(reason: string): void {
    this.markClosed(reason);
    this.h2.destroy();
    this.socket.destroy();
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closeReason !== undefined) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  private markClosed(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.heartbeat.stop();
    controlBudgets.delete(this.budget);
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }
}

/** A stream's DATA counter, on the stream itself (see countData). */
const DATA_COUNTER = Symbol('natprox.dataCounter');

interface DataCounter {
  budget: ControlBudget;
  ended: boolean;
}

type CountedStream = ClientHttp2Stream & { [DATA_COUNTER]?: DataCounter };

let countingPushInstalled = false;

/**
 * Credits the DATA a stream receives to the tunnel's budget, as Node hands it to the stream:
 * nghttp2 keeps no count that JavaScript can read while the stream is open. The counting
 * push() goes on the prototype of Node's client streams, once: a push() of each stream's
 * own cost 8% of the throughput (a closure, and an own property on every stream).
 */
function countData(stream: ClientHttp2Stream, budget: ControlBudget): DataCounter {
  const counter: DataCounter = { budget, ended: false };
  (stream as CountedStream)[DATA_COUNTER] = counter;
  if (!countingPushInstalled) {
    countingPushInstalled = true;
    const prototype = Object.getPrototypeOf(stream) as ClientHttp2Stream;
    const push = prototype.push;
    prototype.push = function countingPush(
      this: CountedStream,
      chunk: unknown,
      encoding?: BufferEncoding,
    ): boolean {
      const counted = this[DATA_COUNTER];
      if (counted !== undefined) {
        if (chunk === null) counted.ended = true;
        else if (chunk) {
          counted.budget.credit((chunk as Buffer).length + DATA_FRAME_ALLOWANCE_BYTES);
        }
      }
      return push.call(this, chunk, encoding);
    };
  }
  return counter;
}
