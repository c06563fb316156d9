import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ProxyEndpoint } from '../client/proxy-endpoint.js';
import { ConfigError } from '../errors.js';
import { normalizeFingerprint, type ClientTls } from '../wire/tls-connect.js';
import { redactUrl } from '../util/redact-url.js';
import type { ClientFile } from './schema.js';
import { readSecretFile } from './secret-file.js';

/** The proxy flags of natprox client (and check); --proxy-url may be repeated. */
export interface ClientProxyFlags {
  'proxy-url'?: string | string[] | undefined;
  'token-file'?: string | undefined;
  'ca-file'?: string | undefined;
  'tls-fingerprint'?: string | undefined;
  'cert-file'?: string | undefined;
  'key-file'?: string | undefined;
}

/** A value and where it came from, for error messages. */
interface Sourced {
  value: string;
  where: string;
}

/**
 * The settings each proxy has: its field here, its flag, and its key in the config file
 * (at the top level and in each proxies: entry).
 */
const PROXY_SETTINGS = [
  ['tokenFile', 'token-file', 'token_file'],
  ['caFile', 'ca-file', 'ca_file'],
  ['pin', 'tls-fingerprint', 'tls_fingerprint'],
  ['certFile', 'cert-file', 'cert_file'],
  ['keyFile', 'key-file', 'key_file'],
] as const;

type ProxySettings = Partial<Record<(typeof PROXY_SETTINGS)[number][0], Sourced>>;
type ProxySettingKeys = Partial<Record<(typeof PROXY_SETTINGS)[number][2], string>>;

interface ProxySource extends ProxySettings {
  url: Sourced;
}

/** Each setting from its flag, else from `keys` (named `${where}KEY`), else from `fallback`. */
function settingsOf(
  flags: ClientProxyFlags,
  keys: ProxySettingKeys,
  where: string,
  fallback: ProxySettings = {},
): ProxySettings {
  const settings: ProxySettings = {};
  for (const [field, flag, key] of PROXY_SETTINGS) {
    settings[field] =
      sourced(flags[flag], `--${flag}`) ?? sourced(keys[key], `${where}${key}`) ?? fallback[field];
  }
  return settings;
}

function sourced(value: string | undefined, where: string): Sourced | undefined {
  return value === undefined ? undefined : { value, where };
}

/**
 * The proxies to keep tunnels to, each with its token and TLS settings. Repeated --proxy-url
 * flags replace the file's proxy_url or proxies: and share --token-file, --ca-file,
 * --tls-fingerprint, --cert-file and --key-file (or the file's top-level token_file, ca_file,
 * tls_fingerprint, cert_file, key_file). In a proxies: list each entry may name its own; a
 * flag overrides them all.
 */
export function resolveClientProxies(
  flags: ClientProxyFlags,
  file: ClientFile,
  source: string,
  /** Receives what is worth a warning (how a token or key file is kept). */
  warnings: string[] = [],
): ProxyEndpoint[] {
  const shared = settingsOf(flags, file, `${source}: `);
  const flagUrls = [flags['proxy-url'] ?? []].flat();
  let sources: ProxySource[];
  if (flagUrls.length > 0) {
    sources = flagUrls.map((value) => ({ url: { value, where: '--proxy-url' }, ...shared }));
  } else if (file.proxies !== undefined) {
    if (file.proxy_url !== undefined) {
      throw new ConfigError(
        `${source}: proxy_url and proxies: give either proxy_url (one proxy) or proxies (a list of {url, token_file, ca_file, tls_fingerprint, cert_file, key_file}), not both`,
      );
    }
    sources = file.proxies.map((entry, i) => {
      const where = `${source}: proxies[${i}]`;
      return {
        url: { value: entry.url, where: `${where}.url` },
        ...settingsOf(flags, entry, `${where}.`, shared),
      };
    });
  } else if (file.proxy_url !== undefined) {
    sources = [{ url: { value: file.proxy_url, where: `${source}: proxy_url` }, ...shared }];
  } else {
    throw new ConfigError(
      `--proxy-url is required${source ? ` (${source} has no proxy_url either)` : ' (or proxy_url in --config)'}: the address of natprox proxy, e.g. http://vps.example:8080`,
    );
  }

  const seen = new Set<string>();
  return sources.map((entry) => {
    const url = parseProxyUrl(entry.url.value, entry.url.where);
    if (seen.has(url.href)) {
      throw new ConfigError(
        `${entry.url.where}: ${redactUrl(url)} is listed twice; give each proxy once`,
      );
    }
    seen.add(url.href);
    return {
      url,
      token: entry.tokenFile ? readToken(entry.tokenFile, warnings) : undefined,
      tls: clientTls(url, entry, warnings),
    };
  });
}

export function parseProxyUrl(text: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(
      `${where}: "${redactUrl(text)}" is not a URL; expected http://HOST:PORT or https://HOST (IPv6 as http://[ADDR]:PORT)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${where}: expected an http:// or https:// URL, got ${url.protocol}//`);
  }
  return url;
}

function readToken({ value: file, where }: Sourced, warnings: string[]): string {
  const secret = readSecretFile(file, 'the token file', where);
  warnings.push(...secret.warnings);
  const token = secret.data.toString('utf8').replace(/\r?\n$/, '');
  if (token === '') throw new ConfigError(`${where}: the token file ${file} is empty`);
  return token;
}

function readPem(file: Sourced, kind: 'CERTIFICATE' | 'PRIVATE KEY', warnings: string[]): Buffer {
  let pem: Buffer;
  if (kind === 'PRIVATE KEY') {
    const secret = readSecretFile(file.value, 'the key file', file.where);
    warnings.push(...secret.warnings);
    pem = secret.data;
  } else {
    try {
      pem = readFileSync(file.value);
    } catch (err) {
      throw new ConfigError(`${file.where}: cannot read ${file.value}: ${(err as Error).message}`);
    }
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(pem.toString('latin1'))) {
    throw new ConfigError(
      `${file.where}: ${file.value} holds no PEM ${kind === 'CERTIFICATE' ? 'certificate' : 'private key'}`,
    );
  }
  return pem;
}

function clientTls(proxyUrl: URL, entry: ProxySource, warnings: string[]): ClientTls | undefined {
  const { caFile, pin: pinText, certFile, keyFile } = entry;
  const given = caFile ?? pinText ?? certFile ?? keyFile;
  if (given === undefined) return undefined;
  if (proxyUrl.protocol !== 'https:') {
    throw new ConfigError(
      `${given.where}: --ca-file, --tls-fingerprint and --cert-file apply to https:// proxy URLs; ${proxyUrl.origin} is plain http`,
    );
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      `${(certFile ?? keyFile)?.where}: a client certificate needs both --cert-file and --key-file (cert_file and key_file)`,
    );
  }
  const ca = caFile && readPem(caFile, 'CERTIFICATE', warnings);
  let pinSha256: string | undefined;
  if (pinText !== undefined) {
    pinSha256 = normalizeFingerprint(pinText.value);
    if (pinSha256 === undefined) {
      throw new ConfigError(
        `${pinText.where}: expected the certificate's SHA-256 fingerprint, 64 hex digits with or without colons (openssl x509 -noout -fingerprint -sha256 -in cert.pem), got "${pinText.value}"`,
      );
    }
  }
  if (certFile === undefined || keyFile === undefined) return { ca, pinSha256 };
  const cert = readPem(certFile, 'CERTIFICATE', warnings);
  const key = readPem(keyFile, 'PRIVATE KEY', warnings);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(
      `${certFile.where}: the client certificate ${certFile.value} and key ${keyFile.value} do not load: ${(err as Error).message}; both must be PEM and belong together`,
    );
  }
  return { ca, pinSha256, cert, key };
}
