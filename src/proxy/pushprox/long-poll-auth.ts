import type { PresentedCertificate } from '../../auth/client-certificate.js';
import {
  acceptsCertificates,
  authenticateClient,
  certificateRefusal,
  credentialName,
  grantKey,
  type ClientGrant,
} from '../../auth/client-grants.js';
import { parseAuthorization } from '../../auth/credentials.js';

export type LongPollAuth =
  | { ok: true; grantKey: string | undefined; grant: ClientGrant | undefined }
  | { ok: false; status: 401 | 403; reason: string };

/**
 * Checks a poll's or push's credentials. PushProx clients send the user info of their proxy
 * URL as basic auth on every request, so the token is the password of
 * `https://NAME:TOKEN@proxy/`; a bearer token is accepted too. Without a token, a TLS
 * client certificate that a certificate grant accepts will do (PushProx's --tls.cert).
 * Without `clients:` in the proxy's config anyone may poll, as with native clients.
 */
export function authorizeLongPoll(
  grants: readonly ClientGrant[] | undefined,
  authorization: string | undefined,
  certificate: () => PresentedCertificate | undefined,
  /** The name asked for; undefined checks only that the credentials are known. */
  name: string | undefined,
): LongPollAuth {
  if (grants === undefined) return { ok: true, grantKey: undefined, grant: undefined };
  const presented = parseAuthorization(authorization);
  const token = presented?.kind === 'basic' ? presented.password : presented?.token;
  const auth = authenticateClient(grants, token, certificate, name === undefined ? [] : [name]);
  if (auth.ok) return { ok: true, grantKey: grantKey(auth.grant), grant: auth.grant };
  switch (auth.problem) {
    case 'no-credentials':
      return {
        ok: false,
        status: 401,
        reason: `natprox: this proxy requires a client token; give the PushProx client --proxy-url http://${name ?? 'NAME'}:TOKEN@HOST:PORT/ (the token as the password)${acceptsCertificates(grants) ? ', or a client certificate (--tls.cert and --tls.key)' : ''}`,
      };
    case 'unknown-token':
      return {
        ok: false,
        status: 401,
        reason:
          'natprox: the client token is not known to this proxy; check the password in the PushProx client --proxy-url and clients: in the proxy config',
      };
    case 'unknown-certificate':
      return {
        ok: false,
        status: 401,
        reason: certificateRefusal(grants, auth.certificate),
      };
    case 'names-refused':
      return {
        ok: false,
        status: 403,
        reason: `natprox: this ${credentialName(auth.grant)} may not serve "${name}"; it grants ${auth.grant.names.join(', ')}`,
      };
  }
}
