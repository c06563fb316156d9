import type { OutgoingHttpHeaders } from 'node:http';
import {
  GO_USER_AGENT,
  headerLines,
  ID_HEADER,
  SCRAPE_TIMEOUT_SECONDS_HEADER,
} from './wire-format.js';

/** One scrape as a PushProx client receives it in a /poll answer. */
export interface PollRequest {
  /** GET when not set; a HEAD goes as a GET (the scraper's response drops the body). */
  method?: string | undefined;
  /** The length of the body that follows the head; for methods other than GET and HEAD. */
  bodyLength?: number | undefined;
  /** The FQDN exactly as the client polled with it: the Go client compares it byte for byte. */
  fqdn: string;
  port: number;
  /** Path and query, as the scraper sent them. */
  pathAndQuery: string;
  /** End-to-end headers of the scraper's request. */
  headers: OutgoingHttpHeaders;
  id: string;
  timeoutSeconds: number;
}

/** Written apart (Host, User-Agent), or framing (Content-Length is set for a body). */
const NOT_COPIED = new Set(['host', 'user-agent', 'transfer-encoding', 'trailer']);

/**
 * The head of the request serialised as Go's `Request.WriteProxy` writes it: absolute-form
 * request line, Host, User-Agent, then the other headers sorted by canonical name, then an
 * empty line. A GET carries no Content-Length; other methods carry their body's (0 without
 * one), and the body follows the head. The scraper's own Id or timeout header, if any, is
 * replaced by the proxy's.
 */
export function writeProxyRequest(request: PollRequest): string {
  const host = `${request.fqdn}:${request.port}`;
  const userAgent = request.headers['user-agent'];
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower === ID_HEADER || lower === SCRAPE_TIMEOUT_SECONDS_HEADER) continue;
    if (lower === 'content-length') continue; // set below, for the body actually sent
    headers[lower] = value;
  }
  headers[ID_HEADER] = request.id;
  headers[SCRAPE_TIMEOUT_SECONDS_HEADER] = formatSeconds(request.timeoutSeconds);
  const method = request.method === undefined || request.method === 'HEAD' ? 'GET' : request.method;
  if (method !== 'GET') headers['content-length'] = String(request.bodyLength ?? 0);
  const lines = [
    `${method} http://${host}${request.pathAndQuery} HTTP/1.1`,
    `Host: ${host}`,
    `User-Agent: ${typeof userAgent === 'string' && userAgent !== '' ? userAgent : GO_USER_AGENT}`,
    ...headerLines(headers, NOT_COPIED),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Seconds as Prometheus writes them ("10", "0.5"), to the millisecond. */
export function formatSeconds(seconds: number): string {
  return String(Math.round(seconds * 1000) / 1000);
}
