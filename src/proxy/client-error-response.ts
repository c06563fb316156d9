import type { Duplex } from 'node:stream';
import { writeRawResponse } from './raw-response.js';

/** Request line plus headers; larger requests get 431. */
export const MAX_HEADER_BYTES = 32 * 1024;

/**
 * Answers a request the HTTP server could not parse or that came too slowly, with a status
 * that says which; a connection that failed in TLS (or is gone) is just closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A TLS error (a handshake that timed out or failed) leaves nothing to answer on.
  const tlsFailure = /^(ERR_TLS_|ERR_SSL_|ECONNRESET)/.test(err.code ?? '');
  if (!socket.writable || tlsFailure) {
    socket.destroy();
    return;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    writeRawResponse(
      socket,
      431,
      `natprox: request line and headers exceed ${MAX_HEADER_BYTES} bytes`,
    );
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    writeRawResponse(socket, 408, 'natprox: request headers did not arrive in time');
  } else {
    writeRawResponse(socket, 400, 'natprox: malformed HTTP request');
  }
}
