import { describeCertificate, type PresentedCertificate } from './client-certificate.js';
import { matchesSha256 } from './secret-hash.js';

/**
 * Who may connect as a client and which names it may register. Exactly one credential is
 * set: a token (stored as its SHA-256), or a TLS client certificate, named by its subject
 * (CN or DNS name, signed by the proxy's client CA) or pinned by its SHA-256 fingerprint.
 */
export interface ClientGrant {
  /** Exact names or `*` globs, e.g. "raspberrypi", "home-*". */
  names: string[];
  tokenSha256?: string | undefined;
  /** A CN or DNS subject alternative name, lowercase. */
  certSubject?: string | undefined;
  /** 64 lowercase hex digits. */
  certSha256?: string | undefined;
  /** Distinct names this entry's clients may hold at once; see entryLimits() for the default. */
  maxNames?: number | undefined;
  /** Tunnels (and PushProx names) this entry's clients may hold at once. */
  maxTunnels?: number | undefined;
}

/** How a session authenticated, from its grant key: for the status page and its JSON. */
export function authMethodOf(key: string | undefined): 'token' | 'certificate' | 'none' {
  if (key === undefined) return 'none';
  return key.startsWith('token:') ? 'token' : 'certificate';
}

/** Identifies a grant across config reloads: a session keeps the key it connected with. */
export function grantKey(grant: ClientGrant): string {
  if (grant.tokenSha256 !== undefined) return `token:${grant.tokenSha256}`;
  if (grant.certSha256 !== undefined) return `cert-sha256:${grant.certSha256}`;
  return `cert-subject:${grant.certSubject ?? ''}`;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[a-z0-9.-]*');
  return new RegExp(`^${escaped}$`);
}

export function nameMatches(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(name));
}

/** The grant whose token matches, or undefined. Checks every grant (constant time). */
export function findGrant(grants: readonly ClientGrant[], token: string): ClientGrant | undefined {
  let found: ClientGrant | undefined;
  for (const grant of grants) {
    if (grant.tokenSha256 === undefined) continue;
    if (matchesSha256(token, grant.tokenSha256) && !found) found = grant;
  }
  return found;
}

/** Whether a certificate grant accepts this certificate. */
export function certificateMatches(grant: ClientGrant, cert: PresentedCertificate): boolean {
  if (grant.certSha256 !== undefined) return cert.current && cert.sha256 === grant.certSha256;
  if (grant.certSubject !== undefined) {
    return cert.verified && cert.subjects.includes(grant.certSubject);
  }
  return false;
}

export type ClientAuth =
  | { ok: true; grant: ClientGrant; via: 'token' | 'certificate' }
  | { ok: false; problem: 'no-credentials' | 'unknown-token' }
  | { ok: false; problem: 'unknown-certificate'; certificate: PresentedCertificate }
  | { ok: false; problem: 'names-refused'; grant: ClientGrant; refused: string[] };

/**
 * Authenticates a client by its token or, when it presents none, by its TLS client
 * certificate, and checks that the grant covers every name it asks for. A wrong token is
 * refused even when a certificate would do: what the client sent is what it meant.
 */
export function authenticateClient(
  grants: readonly ClientGrant[],
  token: string | undefined,
  certificate: () => PresentedCertificate | undefined,
  names: readonly string[],
): ClientAuth {
  const refusedBy = (grant: ClientGrant): string[] =>
    names.filter((name) => !nameMatches(grant.names, name));
  if (token) {
    const grant = findGrant(grants, token);
    if (!grant) return { ok: false, problem: 'unknown-token' };
    const refused = refusedBy(grant);
    return refused.length === 0
      ? { ok: true, grant, via: 'token' }
      : { ok: false, problem: 'names-refused', grant, refused };
  }
  const cert = acceptsCertificates(grants) ? certificate() : undefined;
  if (!cert) return { ok: false, problem: 'no-credentials' };
  const matching = grants.filter((grant) => certificateMatches(grant, cert));
  const [first] = matching;
  if (!first) return { ok: false, problem: 'unknown-certificate', certificate: cert };
  const granting = matching.find((grant) => refusedBy(grant).length === 0);
  return granting
    ? { ok: true, grant: granting, via: 'certificate' }
    : { ok: false, problem: 'names-refused', grant: first, refused: refusedBy(first) };
}

/** Whether any grant authenticates by certificate (then messages mention certificates). */
export function acceptsCertificates(grants: readonly ClientGrant[]): boolean {
  return grants.some((grant) => grant.tokenSha256 === undefined);
}

/** What a grant's credential is called in messages. */
export function credentialName(grant: ClientGrant): 'token' | 'client certificate' {
  return grant.tokenSha256 === undefined ? 'client certificate' : 'token';
}

/** The client's error message for a certificate that matched no grant, saying why. */
export function certificateRefusal(
  grants: readonly ClientGrant[],
  cert: PresentedCertificate,
): string {
  const bySubject = grants.some((grant) => grant.certSubject !== undefined);
  const why =
    bySubject && !cert.verified
      ? `it is not signed by the proxy's client CA (tls.client_ca_file)${cert.verifyError ? `: ${cert.verifyError}` : ''}`
      : !cert.current
        ? 'it is expired or not yet valid'
        : `no clients: entry names its subject (${cert.subjects.join(', ') || 'none'}) or its SHA-256 fingerprint`;
  return `natprox: the client certificate (${describeCertificate(cert)}) is not accepted: ${why}`;
}
