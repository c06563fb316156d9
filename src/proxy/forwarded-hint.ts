import type { IncomingHttpHeaders } from 'node:http';
import type { NatproxProxy } from './proxy-server.js';

/** Headers that nginx, Caddy, Traefik or HAProxy add when they forward a request. */
const FORWARDING_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
] as const;

/** The first forwarding header in `headers`, or undefined. */
export function forwardingHeaderOf(headers: IncomingHttpHeaders): string | undefined {
  return FORWARDING_HEADERS.find((name) => headers[name] !== undefined);
}

/**
 * Calls `warn` once, on the first request that a reverse proxy forwarded: for a proxy on
 * loopback without clients: or scrapers:, which is safe only while nothing makes loopback
 * public. (nginx adds these headers only when told to; Caddy always does.)
 */
export function warnWhenForwarded(proxy: NatproxProxy, warn: (header: string) => void): void {
  const stop = proxy.watchRequests((req) => {
    const header = forwardingHeaderOf(req.headers);
    if (header === undefined) return;
    stop();
    warn(header);
  });
}
