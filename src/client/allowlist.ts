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
    if (!target) {
      const allowed = this.ports.join(', ') || 'none';
      return {
        allowed: false,
        reason: `port ${port} is not on this client's allowlist (allowed ports: ${allowed}); add --allow ${port} on the client to permit it`,
      };
    }
    if (target.pathPrefixes && !target.pathPrefixes.some((prefix) => path.startsWith(prefix))) {
      return {
        allowed: false,
        reason: `path "${path}" on port ${port} is not allowed (allowed prefixes: ${target.pathPrefixes.join(', ')})`,
      };
    }
    return { allowed: true, target };
  }
}
