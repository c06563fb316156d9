export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "HOST:PORT", "[IPv6]:PORT" or ":PORT". Returns an error text naming what is
 * expected instead of throwing, so the caller can prefix the flag or field name.
 */
export function parseHostPort(text: string, defaultHost?: string): HostPort | string {
  const bracketed = /^\[([0-9a-fA-F:.%a-zA-Z]+)\]:(\d+)$/.exec(text);
  let host: string | undefined;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
  } else if (text.startsWith('[')) {
    return `expected [ADDR]:PORT with a port after the brackets, got "${text}"`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) {
      if (/^\d+$/.test(text) && defaultHost !== undefined) {
        host = defaultHost;
        portText = text;
      } else {
        return `expected HOST:PORT (IPv6 as [ADDR]:PORT), got "${text}"`;
      }
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(':')) {
        return `IPv6 addresses need brackets: expected [ADDR]:PORT, got "${text}"`;
      }
      if (host === '') host = defaultHost ?? '0.0.0.0';
    }
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText ?? '') || port < 0 || port > 65535) {
    return `expected a port between 0 and 65535, got "${portText}" in "${text}"`;
  }
  return { host: host as string, port };
}

/**
 * Host and port to connect to for an http(s) URL: IPv6 literals without their brackets,
 * and the scheme's default port when the URL names none.
 */
export function urlHostPort(url: URL): HostPort {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { host, port };
}

/** Formats host and port for a URL or a log line, bracketing IPv6 addresses. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
