import { isIP } from 'node:net';

/** IP addresses and localhost: how operators reach the proxy itself, never a client name. */
export function isOperatorHost(host: string): boolean {
  return host === 'localhost' || isIP(host) !== 0;
}

/** The lower-case host name of a Host header, without its port. */
export function hostNameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.split(':')[0];
  return name ? name.toLowerCase() : undefined;
}

/** The name part of an absolute-form target or a CONNECT authority, for logs. */
export function hostOf(target: string): string {
  try {
    return new URL(target.includes('://') ? target : `http://${target}`).hostname;
  } catch {
    return '';
  }
}
