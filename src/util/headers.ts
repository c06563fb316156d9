import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 section 7.6.1) and ones HTTP/2 forbids; never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

/**
 * Copies end-to-end headers, dropping hop-by-hop ones, those named in Connection,
 * HTTP/2 pseudo-headers and any header whose name starts with one of `dropPrefixes`.
 */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
  dropPrefixes: readonly string[] = [],
): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (dropPrefixes.some((prefix) => name.startsWith(prefix))) continue;
    out[name] = value;
  }
  return out;
}
