import { isIP, type Socket } from 'node:net';
import tls, { type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { normalizeFingerprint, type ClientTls } from '../wire/tls-connect.js';
import { failed, passed, STEP, type StepOutcome } from './outcome.js';

/** What the TLS handshake showed, before any decision: the client's checks are made after. */
export interface TlsFacts {
  socket: TLSSocket;
  certificate: DetailedPeerCertificate;
  /** Node's verdict on the chain, then the host name (an OpenSSL or Node code), if any. */
  verifyError: string | undefined;
  /** The host-name check on its own, made even when the chain already failed. */
  hostnameError: string | undefined;
  /** SHA-256 of the certificate, 64 lowercase hex. */
  fingerprint: string | undefined;
}

export type TlsProbe = { ok: true; facts: TlsFacts } | { ok: false; code: string; message: string };

/**
 * Runs the TLS handshake over `socket` as the client does (same SNI, ALPN and CA), but
 * without rejecting, so every problem can be named; the caller decides as the client would.
 */
export function probeTls(
  socket: Socket,
  host: string,
  options: ClientTls | undefined,
  timeoutMs: number,
): Promise<TlsProbe> {
  return new Promise((resolve) => {
    const secure = tls.connect({
      socket,
      ...(isIP(host) ? {} : { servername: host }),
      ...(options?.ca ? { ca: options.ca } : {}),
      ...(options?.cert ? { cert: options.cert, key: options.key } : {}),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    let done = false;
    const finish = (result: TlsProbe): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!result.ok) secure.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish({ ok: false, code: 'ETIMEOUT', message: `no TLS handshake within ${timeoutMs} ms` }),
      timeoutMs,
    );
    secure.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, code: err.code ?? '', message: err.message }),
    );
    secure.once('close', () =>
      finish({
        ok: false,
        code: 'ECONNRESET',
        message: 'the connection closed during the TLS handshake',
      }),
    );
    secure.once('secureConnect', () => {
      secure.removeAllListeners('close');
      secure.removeAllListeners('error');
      secure.on('error', () => {});
      const certificate = secure.getPeerCertificate(true);
      const hostnameError = tls.checkServerIdentity(host, certificate);
      finish({
        ok: true,
        facts: {
          socket: secure,
          certificate,
          verifyError: secure.authorized ? undefined : String(secure.authorizationError),
          hostnameError: hostnameError ? hostnameError.message : undefined,
          fingerprint: normalizeFingerprint(certificate.fingerprint256 ?? ''),
        },
      });
    });
  });
}

const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** Fewer days than this left on the certificate is worth a warning. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface TlsContext {
  host: string;
  port: number;
  tls: ClientTls | undefined;
  now: Date;
}

/** The names a certificate is for: its subjectAltName entries, else its CN. */
export function certificateNames(certificate: DetailedPeerCertificate): string[] {
  const san = certificate.subjectaltname;
  if (san) {
    return san
      .split(/,\s*/)
      .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
      .filter(Boolean);
  }
  const cn = certificate.subject?.CN;
  return cn ? [String(cn)] : [];
}

function days(n: number): string {
  return n === 1 || n === -1 ? `${n} day` : `${n} days`;
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function fingerprintText(hex: string | undefined): string {
  return hex ? (hex.match(/../g) ?? []).join(':').toUpperCase() : 'unknown';
}

/** Decides as the client would (pin, else chain and host name) and says what to do. */
export function tlsOutcome(probe: TlsProbe, context: TlsContext): StepOutcome {
  const where = `${context.host}:${context.port}`;
  if (!probe.ok) return handshakeFailure(probe, where);
  const { certificate, verifyError, hostnameError, fingerprint } = probe.facts;
  const names = certificateNames(certificate);
  const issuer = String(certificate.issuer?.CN ?? certificate.issuer?.O ?? 'unknown issuer');
  const validTo = new Date(certificate.valid_to);
  const validFrom = new Date(certificate.valid_from);
  const daysLeft = Math.floor((validTo.getTime() - context.now.getTime()) / DAY_MS);
  const summary = `certificate for ${names.join(', ') || 'no names'}, issued by "${issuer}", valid until ${day(validTo)} (${days(daysLeft)} left)`;
  const expiryHint =
    daysLeft < EXPIRY_WARNING_DAYS
      ? `warning: the certificate expires in ${days(daysLeft)} (${day(validTo)}): renew it soon (the proxy reloads it on SIGHUP)`
      : undefined;
  const trust = context.tls?.ca ? 'the CA file (--ca-file / ca_file)' : "this machine's system CAs";

  const pin = context.tls?.pinSha256;
  if (pin !== undefined) {
    if (fingerprint !== pin) {
      return failed(
        STEP.tls,
        `the certificate of ${where} has SHA-256 ${fingerprintText(fingerprint)}, not the pinned ${fingerprintText(pin)} (${summary})`,
        'if the proxy got a new certificate on purpose, pin the new one with --tls-fingerprint (on the proxy: openssl x509 -noout -fingerprint -sha256 -in tls.crt); otherwise something on the way intercepts TLS',
      );
    }
    const note = verifyError
      ? `; not trusted by ${trust} (${verifyError}), which the pin replaces`
      : '';
    return passed(
      STEP.tls,
      `the pinned certificate (SHA-256 matches); ${summary}${note}`,
      expiryHint,
    );
  }

  if (verifyError === undefined) {
    return passed(
      STEP.tls,
      `chain verified against ${trust}; ${context.host} matches; ${summary}`,
      expiryHint,
    );
  }
  const nameProblem =
    hostnameError && verifyError !== 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? `; besides, it is for ${names.join(', ')}, not ${context.host}`
      : '';
  if (verifyError === 'CERT_HAS_EXPIRED') {
    return failed(
      STEP.tls,
      `the certificate of ${where} expired on ${day(validTo)}${nameProblem}`,
      "renew the proxy's certificate (certbot renew, or your CA's tool); the proxy reloads it on SIGHUP",
    );
  }
  if (verifyError === 'CERT_NOT_YET_VALID') {
    return failed(
      STEP.tls,
      `the certificate of ${where} is not valid before ${validFrom.toISOString()}${nameProblem}`,
      'check the clock of this machine and of the proxy (timedatectl)',
    );
  }
  if (verifyError === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return failed(
      STEP.tls,
      `the certificate of ${where} is for ${names.join(', ') || 'no names'}, not ${context.host}`,
      `use one of ${names.join(', ')} in --proxy-url, or issue the proxy a certificate that includes ${context.host}`,
    );
  }
  if (UNKNOWN_CA.has(verifyError)) {
    const hint = context.tls?.ca
      ? `the CA file does not hold the CA that issued this certificate ("${issuer}"): give that CA's certificate with --ca-file, or pin the proxy's certificate with --tls-fingerprint (SHA-256 ${fingerprintText(fingerprint)}; compare it with the proxy's own certificate first)`
      : `for a private or self-signed certificate give its CA with --ca-file, or pin it with --tls-fingerprint (SHA-256 ${fingerprintText(fingerprint)}; compare it with the proxy's own certificate first)`;
    return failed(
      STEP.tls,
      `the certificate of ${where} (issued by "${issuer}") is not signed by a CA in ${trust} (${verifyError})${nameProblem}`,
      hint,
    );
  }
  return failed(
    STEP.tls,
    `the certificate of ${where} was rejected: ${verifyError}${nameProblem}`,
    `inspect it with: openssl s_client -connect ${where} -servername ${context.host}`,
  );
}

function handshakeFailure(probe: { code: string; message: string }, where: string): StepOutcome {
  const text = `${probe.code} ${probe.message}`;
  if (/WRONG_VERSION_NUMBER|wrong version number|packet length too long|http request/i.test(text)) {
    return failed(
      STEP.tls,
      `${where} does not speak TLS (${probe.message})`,
      'use http:// if the proxy has no tls: in its config, or the port where TLS is served',
    );
  }
  if (probe.code === 'ETIMEOUT') {
    return failed(
      STEP.tls,
      `${where}: ${probe.message}`,
      "the port may not serve TLS, or something on the way holds the connection: check the port in the proxy URL and the proxy's tls: settings",
    );
  }
  return failed(
    STEP.tls,
    `the TLS handshake with ${where} failed: ${probe.code ? `${probe.code}: ` : ''}${probe.message}`,
    "check the proxy's tls: certificate and key and its log; a firewall or middlebox may also cut TLS",
  );
}
