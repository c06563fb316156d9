import { TLSSocket } from 'node:tls';

/** What a client's TLS certificate says, read from its connection. */
export interface PresentedCertificate {
  /** The subject's CN and the DNS subject alternative names, lowercase. */
  subjects: string[];
  /** SHA-256 fingerprint as 64 lowercase hex digits. */
  sha256: string;
  /** It chains to the proxy's client CA (Node checks the dates as part of that). */
  verified: boolean;
  /** Why it did not verify, as OpenSSL says it (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE). */
  verifyError: string | undefined;
  /** Now is within its validity dates. */
  current: boolean;
}

/**
 * The certificate the peer of `socket` presented during the TLS handshake, or undefined
 * for plain HTTP or when it sent none. The handshake itself proved the peer holds the
 * certificate's key, whether or not the certificate chains to the client CA.
 */
export function presentedCertificate(socket: unknown): PresentedCertificate | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert?.fingerprint256) return undefined;
  const commonName = cert.subject?.CN;
  const names = [commonName ?? []].flat();
  for (const entry of (cert.subjectaltname ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(unquote(entry.slice(4)));
  }
  const now = Date.now();
  const authorizationError = socket.authorizationError as Error | string | null | undefined;
  return {
    subjects: [...new Set(names.map((name) => name.toLowerCase()))],
    sha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    verified: socket.authorized,
    verifyError: authorizationError ? String(authorizationError) : undefined,
    current: Date.parse(cert.valid_from) <= now && now <= Date.parse(cert.valid_to),
  };
}

/** Node quotes SAN values with unusual characters as JSON strings. */
function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  try {
    return String(JSON.parse(value));
  } catch {
    return value;
  }
}

/** For messages: '"pi.home.example", SHA-256 ab12…' (the first subject, a short fingerprint). */
export function describeCertificate(cert: PresentedCertificate): string {
  return `${cert.subjects[0] ? `"${cert.subjects[0]}", ` : ''}SHA-256 ${cert.sha256.slice(0, 16)}…`;
}
