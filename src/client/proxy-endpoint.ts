import { ConfigError } from '../errors.js';
import type { ClientTls } from '../wire/tls-connect.js';

/** One proxy the client keeps a tunnel to, with its own token and TLS trust. */
export interface ProxyEndpoint {
  url: URL;
  token?: string | undefined;
  tls?: ClientTls | undefined;
}

/**
 * Which tunnel an event is about: the proxy (host[:port][/path], as metrics and logs show
 * it) and, with --connect-all-addresses, the address that tunnel is connected to.
 */
export interface TunnelName {
  proxy: string;
  address?: string;
}

/** How a proxy is named in metrics and logs: host and port, and its path when it has one. */
export function proxyLabel(url: URL): string {
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.host}${path}`;
}

/** A key that tells tunnels apart: the proxy, plus the address when there is one. */
export function tunnelKey(name: TunnelName): string {
  return name.address === undefined ? name.proxy : `${name.proxy} ${name.address}`;
}

/** The proxies of `options`: `proxies`, or the one `proxyUrl` with `token` and `tls`. */
export function clientProxies(options: {
  proxyUrl?: URL | undefined;
  proxies?: ProxyEndpoint[] | undefined;
  token?: string | undefined;
  tls?: ClientTls | undefined;
}): ProxyEndpoint[] {
  if (options.proxies !== undefined && options.proxyUrl !== undefined) {
    throw new ConfigError('give either proxyUrl (one proxy) or proxies (several), not both');
  }
  if (options.proxies !== undefined) {
    if (options.proxies.length === 0) throw new ConfigError('proxies: expected at least one');
    return options.proxies;
  }
  if (options.proxyUrl === undefined) {
    throw new ConfigError('no proxy: give proxyUrl (or proxies), e.g. http://vps.example:8080');
  }
  return [{ url: options.proxyUrl, token: options.token, tls: options.tls }];
}
