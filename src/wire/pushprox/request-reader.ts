import type { IncomingHttpHeaders } from 'node:http';
import { contentLength } from '../../util/headers.js';
import { ignore } from '../../util/ignore.js';
import { BodyDecoder } from './body-decoder.js';
import {
  MAX_POLLED_BODY_BYTES,
  headEnd,
  headLines,
  ID_HEADER,
  parseHeaderBlock,
  SCRAPE_TIMEOUT_SECONDS_HEADER,
} from './wire-format.js';

/** A scrape request as a PushProx proxy hands it out in a /poll answer. */
export interface PolledRequest {
  method: string;
  /** Absolute: http://NAME:PORT/PATH?QUERY. */
  url: URL;
  /** Lower-case names, as the proxy sent them (Id and the timeout header included). */
  headers: IncomingHttpHeaders;
  id: string;
  /** From X-Prometheus-Scrape-Timeout-Seconds; undefined when absent or unreadable. */
  timeoutMs: number | undefined;
  /** The request's body, when it has one (a POST to remote read); never an empty one. */
  body: Buffer | undefined;
}

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/\d\.\d$/;

/**
 * Parses a request serialised as Go's `Request.WriteProxy` writes it: absolute-form request
 * line, headers, an empty line. Returns what is wrong as text when it is not one, such as an
 * error page an intermediary put in the poll's answer.
 */
export function readPolledRequest(body: Buffer): PolledRequest | string {
  const end = headEnd(body);
  if (end < 0) return 'the poll answer is not an HTTP request (no end of headers)';
  const [requestLine = '', ...rest] = headLines(body.subarray(0, end));
  const match = REQUEST_LINE.exec(requestLine);
  if (!match) {
    return `the poll answer does not start with an HTTP request line (got "${requestLine.slice(0, 60)}")`;
  }
  let url: URL;
  try {
    url = new URL(match[2] as string);
  } catch {
    return `the request target "${(match[2] as string).slice(0, 100)}" is not an absolute URL`;
  }
  if (url.protocol !== 'http:') return `the request target must be http://, got ${url.protocol}//`;
  const headers = parseHeaderBlock(rest);
  if (typeof headers === 'string') return `the polled request: ${headers}`;
  const id = headers[ID_HEADER];
  if (typeof id !== 'string' || id === '') return 'the polled request has no Id header';
  const seconds = Number(headers[SCRAPE_TIMEOUT_SECONDS_HEADER]);
  const requestBody = readBody(headers, body.subarray(end));
  if (typeof requestBody === 'string') return `the polled request's body: ${requestBody}`;
  return {
    method: match[1] as string,
    url,
    headers,
    id,
    timeoutMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
    body: requestBody && requestBody.length > 0 ? requestBody : undefined,
  };
}

/**
 * The body after the head, framed as HTTP/1.1 frames it (Go's WriteProxy writes a known
 * length as Content-Length, an unknown one chunked); undefined when the request has none.
 */
function readBody(headers: IncomingHttpHeaders, rest: Buffer): Buffer | undefined | string {
  if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) {
    const decoder = new BodyDecoder({ kind: 'chunked' });
    decoder.on('error', ignore);
    decoder.end(rest);
    if (decoder.errored) return decoder.errored.message;
    if (!decoder.complete) return 'the chunked body is cut off';
    const parts: Buffer[] = [];
    for (let part = decoder.read() as Buffer | null; part; part = decoder.read() as Buffer | null) {
      parts.push(part);
    }
    return Buffer.concat(parts);
  }
  const length = headers['content-length'];
  if (length === undefined) return undefined;
  const bytes = contentLength(length);
  if (bytes === undefined) return `bad Content-Length "${String(length).slice(0, 20)}"`;
  if (bytes > MAX_POLLED_BODY_BYTES) {
    return `${bytes} bytes, over the limit of ${MAX_POLLED_BODY_BYTES}`;
  }
  if (rest.length < bytes) return `cut off after ${rest.length} of ${bytes} bytes`;
  return rest.subarray(0, bytes);
}
