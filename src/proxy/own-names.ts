import { X509Certificate } from 'node:crypto';
import { validateName } from '../wire/protocol.js';
import { isOperatorHost } from './request-host.js';

/** At most this many names are learned from operators' requests (bounds the set). */
const MAX_LEARNED_NAMES = 16;

/**
 * The names the proxy itself answers to, which no client may register: a client holding
 * one would receive the requests operators (and PushProx clients) send to the proxy, with
 * their Authorization. They are `public_names:` from the config, the DNS names of the
 * listener's TLS certificate (wildcards excepted), localhost and IP literals, and the Host
 * names operators reach the proxy by, learned from requests with operator credentials.
 */
export class OwnNames {
  private configured = new Set<string>();
  private readonly learned = new Set<string>();

  constructor(
    publicNames: readonly string[] | undefined,
    certificate: string | Buffer | undefined,
  ) {
    this.configure(publicNames, certificate);
  }

  /** Replaces the configured and certificate names (config reload); learned ones stay. */
  configure(
    publicNames: readonly string[] | undefined,
    certificate: string | Buffer | undefined,
  ): void {
    this.configured = new Set([
      ...(publicNames ?? []).map((name) => name.toLowerCase()),
      ...certificateNames(certificate),
    ]);
  }

  has(name: string): boolean {
    const lower = name.toLowerCase();
    return isOperatorHost(lower) || this.configured.has(lower) || this.learned.has(lower);
  }

  /** Remembers a Host name an operator reached the proxy by; true when it is new. */
  learn(name: string): boolean {
    if (this.has(name) || validateName(name) !== undefined) return false;
    if (this.learned.size >= MAX_LEARNED_NAMES) return false;
    this.learned.add(name);
    return true;
  }
}

/** The exact DNS names (SANs, else the CN) of a PEM certificate; none when it does not parse. */
export function certificateNames(certificate: string | Buffer | undefined): string[] {
  if (certificate === undefined) return [];
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificate);
  } catch {
    return [];
  }
  const sans = (cert.subjectAltName ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1]?.toLowerCase();
  const names = cn ? [...sans, cn] : sans;
  // A wildcard certificate covers names clients may legitimately have: only exact names count.
  return names.filter((name) => !name.includes('*'));
}

/** The refusal for a registration of names the proxy answers to itself. */
export function ownNameRefusal(names: readonly string[]): string {
  return `natprox: ${names.map((n) => `"${n}"`).join(', ')} ${names.length === 1 ? 'is a name' : 'are names'} the proxy itself answers to (its public_names, its TLS certificate, localhost or an IP address, or a Host operators reach it by); a client registering it would receive requests meant for the proxy. Give the client another --name`;
}
