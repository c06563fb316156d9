import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyEvents } from './proxy-events.js';
import { remoteOf } from './raw-response.js';

/**
 * Bounds the requests one connection may have unanswered. Node's HTTP server parses every
 * request a read brought and answers them in order: a peer that pipelines thousands of
 * requests (`/-/healthy`, or scrapes without credentials) in one write makes the proxy
 * handle all of them before it serves anyone else. Prometheus and every HTTP client it
 * uses send the next request on a connection only after the answer to the last, so they
 * never have more than one unanswered; a connection past the limit is closed at once.
 */
export class PipelineGuard {
  private readonly unanswered = new WeakMap<Socket, number>();

  constructor(private readonly events: ProxyEvents) {}

  /** Counts `req` on its connection; false (and the connection closed) when over `limit`. */
  admit(req: IncomingMessage, res: ServerResponse, limit: number): boolean {
    const socket = req.socket;
    const count = (this.unanswered.get(socket) ?? 0) + 1;
    if (count > limit) {
      if (!socket.destroyed) {
        this.events.emit('connectionCutOff', {
          address: socket.remoteAddress ?? '',
          remoteAddress: remoteOf(req),
          reason: `more than ${limit} requests unanswered on one connection (max_pipelined_requests)`,
        });
        closeCheaply(socket);
      }
      return false;
    }
    this.unanswered.set(socket, count);
    res.once('close', () => this.unanswered.set(socket, (this.unanswered.get(socket) ?? 1) - 1));
    return true;
  }
}

/**
 * Closes a connection that has thousands of requests parsed and unanswered. Node aborts each
 * of them with an error of its own when the socket closes, and capturing their stack traces
 * was 60% of the cost of a flood (a 64 KiB read of pipelined requests: 30 ms, 6 ms without):
 * the listeners around Node's own close handler switch stack traces off for it.
 */
function closeCheaply(socket: Socket): void {
  let saved = Error.stackTraceLimit;
  socket.prependOnceListener('close', () => {
    saved = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  socket.once('close', () => {
    Error.stackTraceLimit = saved;
  });
  socket.destroy();
}
