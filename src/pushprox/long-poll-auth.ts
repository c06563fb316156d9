import { findGrant, nameMatches, type ClientGrant } from '../auth/client-tokens.js';
import { parseAuthorization } from '../auth/credentials.js';

export type LongPollAuth =
  { ok: true; tokenSha256: string | undefined } | { ok: false; status: 401 | 403; reason: string };

/**
 * Checks a poll's or push's token. PushProx clients send the user info of their proxy URL
 * as basic auth on every request, so the token is the password of
 * `https://NAME:TOKEN@proxy/`; a bearer token is accepted too. Without `clients:` in the
 * proxy's config anyone may poll, as with native clients.
 */
export function authorizeLongPoll(
  grants: readonly ClientGrant[] | undefined,
  authorization: string | undefined,
  /** The name asked for; undefined checks only that the token is known. */
  name: string | undefined,
): LongPollAuth {
  if (grants === undefined) return { ok: true, tokenSha256: undefined };
  const presented = parseAuthorization(authorization);
  const token = presented?.kind === 'basic' ? presented.password : presented?.token;
  if (!token) {
    return {
      ok: false,
      status: 401,
      reason: `natprox: this proxy requires a client token; give the PushProx client --proxy-url http://${name ?? 'NAME'}:TOKEN@HOST:PORT/ (the token as the password)`,
    };
  }
  const grant = findGrant(grants, token);
  if (!grant) {
    return {
      ok: false,
      status: 401,
      reason:
        'natprox: the client token is not known to this proxy; check the password in the PushProx client --proxy-url and clients: in the proxy config',
    };
  }
  if (name !== undefined && !nameMatches(grant.names, name)) {
    return {
      ok: false,
      status: 403,
      reason: `natprox: this token may not serve "${name}"; it grants ${grant.names.join(', ')}`,
    };
  }
  return { ok: true, tokenSha256: grant.tokenSha256 };
}
