import http2, { type ServerHttp2Stream } from 'node:http2';
import { statusOf, type ScrapeFailureCode } from '../../wire/failures.js';
import { CLIENT_ANSWER_PREFIX, ERROR_CODE_HEADER } from '../../wire/protocol.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/**
 * Answers a tunnel stream with natprox's own error, with the status the failure table gives
 * `code` (and `allow` as the Allow header of a 405); resets it when a response has begun.
 */
export function refuseStream(
  stream: ServerHttp2Stream,
  code: ScrapeFailureCode,
  reason: string,
  allow?: string,
): void {
  if (stream.closed || stream.destroyed || stream.headersSent) {
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({
    ':status': statusOf(code),
    'content-type': 'text/plain; charset=utf-8',
    [ERROR_CODE_HEADER]: code,
    ...(allow === undefined ? {} : { allow }),
  });
  stream.end(`${CLIENT_ANSWER_PREFIX}${reason}\n`);
}

/** NAME and PORT of a stream's :authority ("NAME:PORT"); port 0 when it is missing or bad. */
export function parseAuthority(authority: string): { name: string; port: number } {
  const colon = authority.lastIndexOf(':');
  const name = (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
  const portText = colon < 0 ? '' : authority.slice(colon + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
  return { name, port: port <= 65535 ? port : 0 };
}
