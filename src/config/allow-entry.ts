import { unsafePath, type AllowedTarget } from '../client/allowlist.js';
import { parseHostPort } from '../util/host-port.js';

/** Where a target runs when an entry names only the port. */
export const DEFAULT_LOCAL_HOST = '127.0.0.1';

const METHOD = /^[A-Z]+$/;

/**
 * What is wrong with an entry's methods, or undefined. Upper-case tokens as HTTP writes
 * them; CONNECT is not one of them (it is allowed by an entry without paths, for https).
 */
export function methodsProblem(methods: readonly string[]): string | undefined {
  if (methods.length === 0) return 'the method list is empty';
  for (const method of methods) {
    if (!METHOD.test(method)) {
      return `"${method}" is not an HTTP method: write methods in upper case, such as POST`;
    }
    if (method === 'CONNECT') {
      return 'CONNECT is not a method to list: an entry without paths allows it (https targets)';
    }
  }
  return undefined;
}

/** What is wrong with a path prefix, or undefined. */
export function pathPrefixProblem(prefix: string): string | undefined {
  if (prefix.includes('?') || prefix.includes('#')) {
    return `path "${prefix}" has a query or fragment; allow entries name path prefixes only`;
  }
  const problem = unsafePath(prefix);
  return problem ? `path "${prefix}": ${problem}` : undefined;
}

/**
 * Parses one --allow entry (or a string in the config's allow list):
 *
 *   9100                         GET and HEAD, any path, on 127.0.0.1:9100
 *   192.168.1.5:9100             the same on another host ([::1]:9100 for IPv6)
 *   9090/federate                GET and HEAD under /federate only
 *   'POST 9090/api/v1/read'      POST under /api/v1/read (remote_read)
 *   'GET,POST 127.0.0.1:9090/x'  several methods, comma-separated
 *
 * Methods come first, apart, in upper case (as in an HTTP request line), so they cannot be
 * read as a host; the path starts at the first "/" after the port. Returns an error text
 * (without the flag's name) when the entry is not one of these.
 */
export function parseAllowText(text: string): AllowedTarget | string {
  const parts = text.trim().split(/\s+/);
  if (parts.length > 2) {
    return `expected [METHODS ][HOST:]PORT[/PATH] (such as 9100 or 'POST 9090/api/v1/read'), got "${text}"`;
  }
  const methodsText = parts.length === 2 ? parts[0] : undefined;
  const targetText = parts[parts.length - 1] ?? '';
  const slash = targetText.indexOf('/');
  const hostPortText = slash < 0 ? targetText : targetText.slice(0, slash);
  const path = slash < 0 ? undefined : targetText.slice(slash);
  const parsed = parseHostPort(hostPortText, DEFAULT_LOCAL_HOST);
  if (typeof parsed === 'string' || parsed.port === 0) {
    return `expected PORT or HOST:PORT, got "${text}"`;
  }
  const target: AllowedTarget = { host: parsed.host, port: parsed.port };
  if (path !== undefined) {
    const problem = pathPrefixProblem(path);
    if (problem) return `${problem} in "${text}"`;
    target.pathPrefixes = [path];
  }
  if (methodsText !== undefined) {
    const methods = methodsText.toUpperCase().split(',');
    const problem = methodsProblem(methods);
    if (problem) return `${problem} in "${text}"`;
    target.methods = [...new Set(methods)];
  }
  return target;
}
