import { sha256Hashing, type SecretHashing } from './secret-hash.js';

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

/**
 * True when the presented credential matches one of the allowed ones. The work does not
 * depend on what is wrong: the presented user name and secret are hashed once, and against
 * every entry both digests are compared in constant time and the results combined without
 * an early exit, so a right user name with a wrong password takes as long as a wrong name.
 */
export function isAuthorized(
  allowed: readonly Credential[],
  presented: PresentedCredential | undefined,
  hashing: SecretHashing = sha256Hashing,
): boolean {
  if (!presented) return false;
  const presentedBasic = presented.kind === 'basic';
  const presentedUser = hashing.digest(presentedBasic ? presented.username : '');
  const presentedSecret = hashing.digest(presentedBasic ? presented.password : presented.token);
  let matched = 0;
  for (const credential of allowed) {
    const basic = 'username' in credential;
    // A bearer entry has no user name: the empty name stands in, so it costs the same.
    const userOk = hashing.equal(presentedUser, hashing.digest(basic ? credential.username : ''));
    const storedHex = basic ? credential.passwordSha256 : credential.bearerSha256;
    const secretOk = hashing.equal(presentedSecret, Buffer.from(storedHex, 'hex'));
    matched |= Number(basic === presentedBasic) & Number(userOk) & Number(secretOk);
  }
  return matched === 1;
}
