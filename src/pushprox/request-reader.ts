import type { IncomingHttpHeaders } from 'node:http';
import {
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
  return {
    method: match[1] as string,
    url,
    headers,
    id,
    timeoutMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
  };
}
