import { matchesSha256 } from './secret-hash.js';

/** A client token the proxy accepts and the name patterns it may register. */
export interface ClientGrant {
  tokenSha256: string;
  /** Exact names or `*` globs, e.g. "raspberrypi", "home-*". */
  names: string[];
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[a-z0-9.-]*');
  return new RegExp(`^${escaped}$`);
}

export function nameMatches(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(name));
}

/** The grant whose token matches, or undefined. */
export function findGrant(grants: readonly ClientGrant[], token: string): ClientGrant | undefined {
  let found: ClientGrant | undefined;
  for (const grant of grants) {
    if (matchesSha256(token, grant.tokenSha256) && !found) found = grant;
  }
  return found;
}
