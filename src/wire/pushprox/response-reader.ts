import { NatproxError } from '../../errors.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { statusHasNoBody } from '../../util/headers.js';
import { ignore } from '../../util/ignore.js';
import { BodyDecoder, type BodyFraming } from './body-decoder.js';
import { headEnd, headLines, parseHeaderBlock } from './wire-format.js';

/** A response a PushProx client pushed: its head, and its body decoding as it streams in. */
export interface PushedResponse {
  /** "HTTP/1.1"; "HTTP/0.0" marks an answer the Go client made itself (its errors). */
  protocol: string;
  status: number;
  /** Lower-case names; framing headers (Transfer-Encoding) already removed. */
  headers: IncomingHttpHeaders;
  body: BodyDecoder;
}

/** The longest end of a head: "\r\n\r\n". */
const HEAD_END_MAX_BYTES = 4;

const STATUS_LINE = /^(HTTP\/\d\.\d) (\d{3})(?: .*)?$/;

/**
 * Reads the head of an HTTP/1.1 response serialised in `source` (as Go's `Response.Write`
 * writes it), at most `maxHeadBytes`, and hands the rest to a BodyDecoder piped from
 * `source`: the body is never buffered whole. Rejects with a reason for the pushing client.
 */
export function readPushedResponse(
  source: Readable,
  maxHeadBytes: number,
): Promise<PushedResponse> {
  return new Promise((resolve, reject) => {
    // The head so far as its pieces: a /push body can arrive one byte per 'data' event
    // (one per HTTP chunk), and re-joining or re-scanning it all on each would cost time
    // quadratic in the head. Only the last bytes of earlier pieces are scanned again.
    const pieces: Buffer[] = [];
    let length = 0;
    let tail: Buffer = Buffer.alloc(0);
    let sourceEnded = false;
    let settled = false;
    const onEnd = (): void => {
      sourceEnded = true;
      fail('the push ended before the response head was complete');
    };
    const onClose = (): void => fail('the push connection closed before the response head arrived');
    const stopReadingHead = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onClose);
    };
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      stopReadingHead();
      reject(new NatproxError('NATPROX_BAD_REQUEST', reason));
    };
    const onData = (chunk: Buffer): void => {
      const window = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
      const endInWindow = headEnd(window);
      const end = endInWindow < 0 ? -1 : length - tail.length + endInWindow;
      pieces.push(chunk);
      length += chunk.length;
      if (end < 0 ? length > maxHeadBytes : end > maxHeadBytes) {
        fail(`the pushed response head exceeds ${maxHeadBytes} bytes`);
        return;
      }
      if (end < 0) {
        tail = window.subarray(Math.max(0, window.length - HEAD_END_MAX_BYTES + 1));
        return;
      }
      const buffered = pieces.length === 1 ? chunk : Buffer.concat(pieces, length);
      source.pause();
      stopReadingHead();
      settled = true;
      const parsed = parseHead(buffered.subarray(0, end));
      if (typeof parsed === 'string') {
        reject(new NatproxError('NATPROX_BAD_REQUEST', parsed));
        return;
      }
      const body = new BodyDecoder(parsed.framing);
      // Malformed framing already in `rest` errors the body before anyone reads it (or for
      // good, when no scrape takes the push); whoever reads it sees the error through its
      // own listener, and an unread one must not bring the proxy down.
      body.on('error', ignore);
      const rest = buffered.subarray(end);
      if (rest.length > 0) body.write(rest);
      source.once('end', () => {
        sourceEnded = true;
      });
      source.once('close', () => {
        if (!sourceEnded)
          body.destroy(
            new NatproxError(
              'NATPROX_CLIENT_LOST',
              'the push connection closed before the body ended',
            ),
          );
      });
      source.pipe(body);
      if (sourceEnded || source.readableEnded) body.end();
      resolve({ protocol: parsed.protocol, status: parsed.status, headers: parsed.headers, body });
    };
    source.on('error', () => {});
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('close', onClose);
  });
}

interface ParsedHead {
  protocol: string;
  status: number;
  headers: IncomingHttpHeaders;
  framing: BodyFraming;
}

function parseHead(head: Buffer): ParsedHead | string {
  const [statusLine = '', ...rest] = headLines(head);
  const match = STATUS_LINE.exec(statusLine);
  if (!match) {
    return `the push body does not start with an HTTP status line (got "${statusLine.slice(0, 60)}")`;
  }
  const headers = parseHeaderBlock(rest);
  if (typeof headers === 'string') return `pushed response: ${headers}`;
  const status = Number(match[2]);
  const framing = framingOf(status, headers);
  if (typeof framing === 'string') return `pushed response: ${framing}`;
  delete headers['transfer-encoding'];
  if (framing.kind !== 'length') delete headers['content-length'];
  return { protocol: match[1] as string, status, headers, framing };
}

/** How the body is delimited, as Go's `http.ReadResponse` decides it. */
function framingOf(status: number, headers: IncomingHttpHeaders): BodyFraming | string {
  if (statusHasNoBody(status)) {
    return { kind: 'length', bytes: 0 };
  }
  const transferEncoding = String(headers['transfer-encoding'] ?? '').toLowerCase();
  if (transferEncoding !== '') {
    if (transferEncoding.trim() !== 'chunked') {
      return `unsupported Transfer-Encoding "${transferEncoding}"`;
    }
    return { kind: 'chunked' };
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) return `invalid Content-Length "${length.slice(0, 20)}"`;
    return { kind: 'length', bytes: Number(length) };
  }
  return { kind: 'to-end' };
}
