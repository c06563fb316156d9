import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { headerLines, ID_HEADER, REMAINING_TIMEOUT_HEADER } from './wire-format.js';

/** Framing headers this writer sets itself. */
const FRAMING = new Set([
  'content-length',
  'transfer-encoding',
  ID_HEADER,
  REMAINING_TIMEOUT_HEADER,
]);

export interface PushHead {
  status: number;
  /** End-to-end headers of the answer. */
  headers: OutgoingHttpHeaders | IncomingHttpHeaders;
  /** The Id of the polled request this answers. */
  id: string;
  remainingSeconds: number;
  /** The body's length when known; otherwise the body is sent chunked. */
  contentLength: number | undefined;
}

/**
 * The head of a response serialised as Go's `Response.Write` writes it: status line, headers
 * sorted by canonical name (with Id and X-Prometheus-Scrape-Timeout), Content-Length or
 * Transfer-Encoding: chunked, an empty line.
 */
export function writeResponseHead(head: PushHead): string {
  const reason = STATUS_CODES[head.status] ?? `status code ${head.status}`;
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(head.headers)) {
    if (!FRAMING.has(name.toLowerCase())) headers[name] = value;
  }
  headers[ID_HEADER] = head.id;
  // Go's %f: six decimals.
  headers[REMAINING_TIMEOUT_HEADER] = Math.max(0, head.remainingSeconds).toFixed(6);
  if (head.contentLength !== undefined) headers['content-length'] = String(head.contentLength);
  else headers['transfer-encoding'] = 'chunked';
  const lines = [`HTTP/1.1 ${head.status} ${reason}`, ...headerLines(headers, new Set())];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Encodes a body with HTTP/1.1 chunked framing as it streams through. */
export class ChunkEncoder extends Transform {
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.push(`${chunk.length.toString(16)}\r\n`);
    this.push(chunk);
    callback(null, '\r\n');
  }

  override _flush(callback: TransformCallback): void {
    callback(null, '0\r\n\r\n');
  }
}
