import { ConfigError } from '../errors.js';
import { formatHostPort } from '../util/host-port.js';

/** One local target the client may fetch, for some methods and paths. */
export interface AllowedTarget {
  host: string;
  port: number;
  /** When set, only paths starting with one of these are fetched. */
  pathPrefixes?: string[];
  /**
   * Methods allowed (upper case); GET and HEAD when not set. GET always brings HEAD along.
   * Anything else (POST for remote_read, say) needs an explicit entry.
   */
  methods?: string[];
}

/** What an allowlist entry allows when it names no methods: reading, never writing. */
export const DEFAULT_METHODS: readonly string[] = ['GET', 'HEAD'];

export type AllowDecision =
  | { allowed: true; target: AllowedTarget }
  | {
      allowed: false;
      reason: string;
      /**
       * Set when the path is allowed but the method is not (405): the methods allowed for
       * it, for the Allow header. Unset when the port or path is refused (403).
       */
      allowedMethods?: string[];
    };

/**
 * What a client may fetch, by port: a scrape of NAME:PORT goes to the host allowed for
 * PORT and nowhere else, so the tunnel never becomes a way into the private network. A port
 * may have several entries (one per set of paths and methods), all for the same host.
 */
export class Allowlist {
  private readonly byPort = new Map<number, AllowedTarget[]>();

  constructor(targets: readonly AllowedTarget[]) {
    for (const target of targets) {
      const existing = this.byPort.get(target.port);
      const first = existing?.[0];
      if (first && first.host !== target.host) {
        throw new ConfigError(
          `port ${target.port} is allowed for two hosts (${formatHostPort(first.host, target.port)} and ${formatHostPort(target.host, target.port)}); a scrape names only the port, so each port may map to one host`,
        );
      }
      if (existing) existing.push(target);
      else this.byPort.set(target.port, [target]);
    }
  }

  get ports(): number[] {
    return [...this.byPort.keys()].sort((a, b) => a - b);
  }

  get targets(): AllowedTarget[] {
    return [...this.byPort.values()].flat();
  }

  /** Whether `method` may fetch `path` on `port`: 403 for the port or path, 405 for the method. */
  check(port: number, path: string, method = 'GET'): AllowDecision {
    const entries = this.byPort.get(port);
    if (!entries) return this.notAllowed(port);
    const problem = unsafePath(path);
    if (problem) return { allowed: false, reason: `path "${path}" refused: ${problem}` };
    // The common case, one entry without paths or methods, decodes nothing.
    const only = entries.length === 1 ? entries[0] : undefined;
    if (only && only.pathPrefixes === undefined && only.methods === undefined) {
      return method === 'GET' || method === 'HEAD'
        ? { allowed: true, target: only }
        : this.methodRefused(port, path, method, DEFAULT_METHODS);
    }
    const decoded = decodeURIComponent(path);
    const covering = entries.filter(
      (entry) =>
        entry.pathPrefixes === undefined || entry.pathPrefixes.some((p) => underPrefix(decoded, p)),
    );
    if (covering.length === 0) {
      const prefixes = entries.flatMap((entry) => entry.pathPrefixes ?? []);
      return {
        allowed: false,
        reason: `path "${path}" on port ${port} is not allowed (allowed prefixes: ${prefixes.join(', ')})`,
      };
    }
    const granting = covering.find((entry) => grantsMethod(entry, method));
    if (granting) return { allowed: true, target: granting };
    const allowed = [...new Set(covering.flatMap(methodsOf))];
    return this.methodRefused(port, path, method, allowed);
  }

  /**
   * CONNECT carries opaque bytes, so it needs an entry for the port without path prefixes:
   * a target restricted to some paths cannot allow it.
   */
  checkConnect(port: number): AllowDecision {
    const entries = this.byPort.get(port);
    if (!entries) return this.notAllowed(port);
    const open = entries.find((entry) => entry.pathPrefixes === undefined);
    if (!open) {
      return {
        allowed: false,
        reason: `port ${port} is allowed only for some paths, which cannot be checked inside CONNECT (https); allow the port without paths to permit it`,
      };
    }
    return { allowed: true, target: open };
  }

  private methodRefused(
    port: number,
    path: string,
    method: string,
    allowed: readonly string[],
  ): AllowDecision {
    return {
      allowed: false,
      reason: `method ${method} is not allowed for "${path}" on port ${port} (allowed: ${allowed.join(', ')}); methods other than GET and HEAD need an explicit grant on the client, such as --allow '${method} ${port}${path}'`,
      allowedMethods: [...allowed],
    };
  }

  private notAllowed(port: number): AllowDecision {
    const allowed = this.ports.join(', ') || 'none';
    return {
      allowed: false,
      reason: `port ${port} is not on this client's allowlist (allowed ports: ${allowed}); add --allow ${port} on the client to permit it`,
    };
  }
}

/** The methods an entry allows: its own list (GET bringing HEAD), or GET and HEAD. */
export function methodsOf(entry: AllowedTarget): readonly string[] {
  if (entry.methods === undefined) return DEFAULT_METHODS;
  return entry.methods.includes('GET') && !entry.methods.includes('HEAD')
    ? [...entry.methods, 'HEAD']
    : entry.methods;
}

function grantsMethod(entry: AllowedTarget, method: string): boolean {
  if (entry.methods === undefined) return method === 'GET' || method === 'HEAD';
  return entry.methods.includes(method) || (method === 'HEAD' && entry.methods.includes('GET'));
}

/** One entry as logs and `natprox check` show it: "127.0.0.1:9090 (POST /api/v1/read)". */
export function describeTarget(target: AllowedTarget): string {
  const where = formatHostPort(target.host, target.port);
  const methods = target.methods ? `${target.methods.join(',')} ` : '';
  if (target.pathPrefixes) return `${where} (${methods}${target.pathPrefixes.join(', ')})`;
  return methods ? `${where} (${methods.trim()})` : where;
}

const MAYBE_UNSAFE = /[%\\\0]|\/\./;

/**
 * Why a request path is refused, whatever the allowlist says: anything a target might
 * resolve to another path than the one checked (dot segments, backslashes, bad escapes).
 */
export function unsafePath(path: string): string | undefined {
  if (!path.startsWith('/')) return 'a path must start with "/"';
  // Checked on every scrape: a path without escapes, backslashes, NULs or "/." is safe.
  if (!MAYBE_UNSAFE.test(path)) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return 'it has an invalid percent-encoding';
  }
  if (/[\\\0]/.test(decoded)) return 'it contains a backslash or NUL';
  if (decoded.split('/').some((segment) => segment === '.' || segment === '..')) {
    return 'it contains "." or ".." segments';
  }
  return undefined;
}

/** "/metrics" covers "/metrics" and "/metrics/…", not "/metricsx"; "/a/" covers "/a/…". */
function underPrefix(path: string, prefix: string): boolean {
  if (path === prefix) return true;
  return path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}
