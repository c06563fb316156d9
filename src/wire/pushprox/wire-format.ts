import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { addHeaderLine } from '../../util/headers.js';

/**
 * PushProx's wire format: the scrape request travels as the body of a /poll answer, written
 * as Go's `Request.WriteProxy` writes it, and the result comes back as the body of a /push,
 * written as Go's `Response.Write` writes it. These are the names and limits both directions
 * share.
 */

/** Links a pushed response to the request it answers (a UUID the proxy made). */
export const ID_HEADER = 'id';
/** The scrape's whole timeout, on the request (Prometheus's own header). */
export const SCRAPE_TIMEOUT_SECONDS_HEADER = 'x-prometheus-scrape-timeout-seconds';
/** The time left, on the pushed response (PushProx's client spells it without -Seconds). */
export const REMAINING_TIMEOUT_HEADER = 'x-prometheus-scrape-timeout';
/** What Go's http package puts in User-Agent when the request has none. */
export const GO_USER_AGENT = 'Go-http-client/1.1';

/** A poll or push head (status or request line and headers) larger than this is refused. */
export const MAX_HEAD_BYTES = 64 * 1024;
/**
 * The largest request body a poll answer may carry (a remote-read query, say; the natprox
 * proxy's max_request_bytes has the same default). A longer poll answer is refused.
 */
export const MAX_POLLED_BODY_BYTES = 16 * 1024 * 1024;
/** A poll body is one FQDN; anything longer is not a PushProx client. */
export const MAX_POLL_BODY_BYTES = 1024;

/** Go's CanonicalMIMEHeaderKey: "x-prometheus-scrape-timeout" → "X-Prometheus-Scrape-Timeout". */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => {
    return `${dash}${letter.toUpperCase()}`;
  });
}

/**
 * Header lines as Go's `Header.Write` produces them: canonical names, sorted by name, one
 * line per value, names in `exclude` (lower case) left out.
 */
export function headerLines(
  headers: OutgoingHttpHeaders | IncomingHttpHeaders,
  exclude: ReadonlySet<string>,
): string[] {
  const lines: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || exclude.has(name.toLowerCase()) || name.startsWith(':')) continue;
    const canonical = canonicalHeaderName(name);
    for (const one of Array.isArray(value) ? value : [value]) {
      // Go turns line breaks inside a value into spaces; a raw one would split the message.
      lines.push([
        canonical,
        String(one)
          .replace(/[\r\n]+/g, ' ')
          .trim(),
      ]);
    }
  }
  lines.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return lines.map(([name, value]) => `${name}: ${value}`);
}

/** Parsed header block: lower-case names, repeats kept as Node does (see addHeaderLine). */
export function parseHeaderBlock(lines: readonly string[]): IncomingHttpHeaders | string {
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `malformed header line "${line.slice(0, 80)}"`;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return `invalid header name "${name}"`;
    addHeaderLine(headers, name, line.slice(colon + 1).trim(), false);
  }
  return headers;
}

/** Where the head ends: the index just past the first empty line, or -1 when not yet seen. */
export function headEnd(buffer: Buffer): number {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return -1;
  if (crlf < 0) return lf + 2;
  if (lf < 0) return crlf + 4;
  return Math.min(crlf + 4, lf + 2);
}

/** The lines of a head (without the empty line that ends it). */
export function headLines(head: Buffer): string[] {
  return head
    .toString('latin1')
    .replace(/(\r?\n)+$/, '')
    .split(/\r?\n/);
}
