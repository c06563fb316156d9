import { isIP } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { NatproxError } from '../errors.js';

/** How the client checks the proxy's certificate. */
export interface ClientTls {
  /** Trust this CA (PEM) instead of the system CAs. */
  ca?: string | Buffer | undefined;
  /** Accept exactly the certificate with this SHA-256 fingerprint (64 lowercase hex). */
  pinSha256?: string | undefined;
  /** A client certificate and its key (PEM), for proxies that accept certificates. */
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/** "AB:CD:…" or "abcd…" as 64 lowercase hex, or undefined when it is not a SHA-256. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/**
 * Connects and finishes the TLS handshake before anything is sent, so the token never
 * reaches a server that failed verification. With a pin, the pin replaces the CA check.
 * With `address`, the TCP connection goes there, while SNI and the certificate check still
 * use `host`: one replica of several behind a name must still prove it is that name.
 */
export function dialTls(
  host: string,
  port: number,
  options: ClientTls | undefined,
  timeoutMs: number,
  address?: string,
  signal?: AbortSignal,
): Promise<TLSSocket> {
  const pin = options?.pinSha256;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = tls.connect({
      host: address ?? host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      // Node checks the certificate against servername, else host: with an address to
      // connect to and an IP literal as the name, the name is what must match.
      ...(address !== undefined && isIP(host)
        ? {
            checkServerIdentity: (_name: string, cert: tls.PeerCertificate) =>
              tls.checkServerIdentity(host, cert),
          }
        : {}),
      ...(options?.ca ? { ca: options.ca } : {}),
      ...(options?.cert ? { cert: options.cert, key: options.key } : {}),
      rejectUnauthorized: pin === undefined,
      ALPNProtocols: ['http/1.1'],
      timeout: timeoutMs,
    });
    const where =
      address === undefined || address === host
        ? `${host}:${port}`
        : `${host}:${port} (${address})`;
    const onAbort = (): void => {
      socket.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (message: string, cause?: unknown): void => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new NatproxError('NATPROX_TUNNEL_FAILED', message, { cause }));
    };
    socket.once('timeout', () => fail(`TLS handshake with ${where} took over ${timeoutMs} ms`));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const hint = pin
        ? ''
        : '; for a private CA give --ca-file, or pin the certificate with --tls-fingerprint';
      fail(
        `TLS with ${where} failed: ${err.code ? `${err.code}: ` : ''}${err.message}${hint}`,
        err,
      );
    });
    socket.once('secureConnect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.setTimeout(0);
      if (pin !== undefined) {
        const actual = normalizeFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
        if (actual !== pin) {
          fail(
            `the certificate of ${where} has SHA-256 fingerprint ${actual ?? 'unknown'}, not the pinned ${pin}; check --tls-fingerprint`,
          );
          return;
        }
      }
      resolve(socket);
    });
  });
}
