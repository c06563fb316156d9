import { formatHostPort } from '../util/host-port.js';

/** One local target the client may fetch. */
export interface AllowedTarget {
  host: string;
  port: number;
  /** When set, only paths starting with one of these are fetched. */
  pathPrefixes?: string[];
}

export type AllowDecision =
  { allowed: true; target: AllowedTarget } | { allowed: false; reason: string };

/**
 * What a client may scrape, by port: a scrape of NAME:PORT goes to the host allowed for
 * PORT and nowhere else, so the tunnel never becomes a way into the private network.
 */
export class Allowlist {
  private readonly byPort = new Map<number, AllowedTarget>();

  constructor(targets: readonly AllowedTarget[]) {
    for (const target of targets) {
      const existing = this.byPort.get(target.port);
      if (existing && existing.host !== target.host) {
        throw new Error(
          `port ${target.port} is allowed for two hosts (${formatHostPort(existing.host, target.port)} and ${formatHostPort(target.host, target.port)}); a scrape names only the port, so each port may map to one host`,
        );
      }
      this.byPort.set(target.port, target);
    }
  }

  get ports(): number[] {
    return [...this.byPort.keys()].sort((a, b) => a - b);
  }

  get targets(): AllowedTarget[] {
    return [...this.byPort.values()];
  }

  check(port: number, path: string): AllowDecision {
    const target = this.byPort.get(port);
    if (!target) return this.notAllowed(port);
    const problem = unsafePath(path);
    if (problem) return { allowed: false, reason: `path "${path}" refused: ${problem}` };
    if (target.pathPrefixes === undefined) return { allowed: true, target };
    const decoded = decodeURIComponent(path);
    if (!target.pathPrefixes.some((p) => underPrefix(decoded, p))) {
      return {
        allowed: false,
        reason: `path "${path}" on port ${port} is not allowed (allowed prefixes: ${target.pathPrefixes.join(', ')})`,
      };
    }
    return { allowed: true, target };
  }

  /** CONNECT carries opaque bytes, so a target restricted to path prefixes cannot allow it. */
  checkConnect(port: number): AllowDecision {
    const target = this.byPort.get(port);
    if (!target) return this.notAllowed(port);
    if (target.pathPrefixes) {
      return {
        allowed: false,
        reason: `port ${port} is allowed only for some paths, which cannot be checked inside CONNECT (https); allow the port without paths to permit it`,
      };
    }
    return { allowed: true, target };
  }

  private notAllowed(port: number): AllowDecision {
    const allowed = this.ports.join(', ') || 'none';
    return {
      allowed: false,
      reason: `port ${port} is not on this client's allowlist (allowed ports: ${allowed}); add --allow ${port} on the client to permit it`,
    };
  }
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
