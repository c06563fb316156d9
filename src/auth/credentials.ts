import { matchesSha256 } from './secret-hash.js';

/** A credential the proxy accepts: basic (username + password hash) or bearer (token hash). */
export type Credential = { username: string; passwordSha256: string } | { bearerSha256: string };

export type PresentedCredential =
  { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

/** Parses an `Authorization` or `Proxy-Authorization` header value. */
export function parseAuthorization(value: string | undefined): PresentedCredential | undefined {
  if (!value) return undefined;
  const space = value.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = value.slice(0, space).toLowerCase();
  const payload = value.slice(space + 1).trim();
  if (scheme === 'bearer' && payload !== '') return { kind: 'bearer', token: payload };
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(payload)) return undefined;
    const decoded = Buffer.from(payload, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** True when the presented credential matches one of the allowed ones. */
export function isAuthorized(
  allowed: readonly Credential[],
  presented: PresentedCredential | undefined,
): boolean {
  if (!presented) return false;
  // Check every entry so the time taken does not reveal which one matched.
  let ok = false;
  for (const credential of allowed) {
    if ('bearerSha256' in credential) {
      if (presented.kind === 'bearer' && matchesSha256(presented.token, credential.bearerSha256)) {
        ok = true;
      }
    } else if (
      presented.kind === 'basic' &&
      presented.username === credential.username &&
      matchesSha256(presented.password, credential.passwordSha256)
    ) {
      ok = true;
    }
  }
  return ok;
}
