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
  // Runs on every scrape, on both sides: a plain loop, and no Set unless Connection names any.
  const connection = headers.connection;
  const named = connection ? connectionTokensOf(connection) : undefined;
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    if (dropPrefixes.length > 0 && hasPrefix(name, dropPrefixes)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The tokens of a Connection header, remembering the last value: nearly every message on
 * a connection says the same ("keep-alive"), and the sets are never changed once built.
 */
let lastConnection: string | undefined;
let lastTokens: Set<string> = new Set();
function connectionTokensOf(value: string | string[]): Set<string> {
  if (typeof value !== 'string') return connectionTokens(value);
  if (value !== lastConnection) {
    lastTokens = connectionTokens(value);
    lastConnection = value;
  }
  return lastTokens;
}

function connectionTokens(value: string | string[]): Set<string> {
  const tokens = new Set<string>();
  for (const token of String(value).split(',')) {
    const trimmed = token.trim().toLowerCase();
    if (trimmed !== '') tokens.add(trimmed);
  }
  return tokens;
}

function hasPrefix(name: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
  return false;
}

/** Headers a message may carry once: a repeat is dropped, as Node's HTTP parser does. */
const SINGLE_VALUED = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * Adds one received header line to `headers` as Node's `IncomingMessage.headers` holds
 * them: Set-Cookie as a list (its repeats cannot be joined, RFC 6265 section 3), other
 * repeats joined with ", ", and with `dropSingleRepeats` a repeat of a single-valued header
 * dropped (Node's parser does that; the PushProx reader keeps it, so that a second
 * Content-Length stays visible to its framing check). `name` is lower case.
 */
export function addHeaderLine(
  headers: IncomingHttpHeaders,
  name: string,
  value: string,
  dropSingleRepeats: boolean,
): void {
  // Own properties only: a header named "constructor" must not find Object's, nor one
  // named "__proto__" set the prototype.
  const seen = Object.hasOwn(headers, name) ? headers[name] : undefined;
  if (seen === undefined) setOwn(headers, name, name === 'set-cookie' ? [value] : value);
  else if (Array.isArray(seen)) seen.push(value);
  else if (!dropSingleRepeats || !SINGLE_VALUED.has(name))
    setOwn(headers, name, `${seen}, ${value}`);
}

function setOwn(headers: IncomingHttpHeaders, name: string, value: string | string[]): void {
  if (name === '__proto__') {
    Object.defineProperty(headers, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else headers[name] = value;
}

/** Answers with this status have no body, whatever their headers say (RFC 9110, 6.4.1). */
export function statusHasNoBody(status: number): boolean {
  return (status >= 100 && status < 200) || status === 204 || status === 304;
}

/** A message's Content-Length when it has one valid value, else undefined. */
export function contentLength(value: string | string[] | undefined): number | undefined {
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}
