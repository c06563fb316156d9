import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { acceptsCertificates, type ClientGrant } from '../auth/client-grants.js';
import type { Credential } from '../auth/credentials.js';
import { ConfigError } from '../errors.js';
import {
  DEFAULT_SCRAPE_TIMEOUT_MS,
  MAX_SCRAPE_TIMEOUT_MS,
  type ProxyOptions,
  type ProxyTls,
} from '../proxy/proxy-server.js';
import type { ProxyLimits } from '../proxy/proxy-limits.js';
import { DEFAULT_HEARTBEAT } from '../wire/heartbeat.js';
import { normalizeFingerprint } from '../wire/tls-connect.js';
import { formatHostPort } from '../util/host-port.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, flagDurationMs, flagHostPort } from './flag-values.js';
import { readSecretFile } from './secret-file.js';
import type { ProxyFile } from './schema.js';

export interface ProxyFlags {
  listen?: string | undefined;
  config?: string | undefined;
  'default-scrape-timeout'?: string | undefined;
  'max-scrape-timeout'?: string | undefined;
  'shutdown-grace'?: string | undefined;
  'heartbeat-interval'?: string | undefined;
  insecure?: boolean | undefined;
}

export interface ProxySettings {
  proxy: ProxyOptions;
  shutdownGraceMs: number;
  /**
   * Open to anyone who reaches it (no clients: or scrapers:) and not on loopback, or on
   * loopback but public through a reverse proxy (behind_reverse_proxy: true).
   */
  openToNetwork: boolean;
  /** How the TLS key file is kept, worth a warning at start (see readSecretFile). */
  warnings: string[];
}

export const DEFAULT_LISTEN = '127.0.0.1:8080';
// Flag parsing shared with the client, in a module that loads no config-file parser.
export { DEFAULT_SHUTDOWN_GRACE_MS, flagDurationMs, flagHostPort } from './flag-values.js';

function credentials(list: ProxyFile['scrapers']): Credential[] | undefined {
  return list?.map((entry) =>
    'bearer_sha256' in entry
      ? { bearerSha256: entry.bearer_sha256 }
      : { username: entry.username, passwordSha256: entry.password_sha256 },
  );
}

/** Combines the parsed config file and flags into proxy settings; flags win. */
export function proxySettingsFrom(flags: ProxyFlags, file: ProxyFile): ProxySettings {
  const listen = flagHostPort('listen', flags.listen ?? file.listen ?? DEFAULT_LISTEN);
  const defaultScrapeTimeoutMs =
    flagDurationMs('default-scrape-timeout', flags['default-scrape-timeout']) ??
    file.default_scrape_timeout ??
    DEFAULT_SCRAPE_TIMEOUT_MS;
  const maxScrapeTimeoutMs =
    flagDurationMs('max-scrape-timeout', flags['max-scrape-timeout']) ??
    file.max_scrape_timeout ??
    MAX_SCRAPE_TIMEOUT_MS;
  if (defaultScrapeTimeoutMs > maxScrapeTimeoutMs) {
    throw new ConfigError(
      `the default scrape timeout (${defaultScrapeTimeoutMs} ms) is longer than the maximum (${maxScrapeTimeoutMs} ms); lower --default-scrape-timeout or raise --max-scrape-timeout`,
    );
  }
  const heartbeatIntervalMs = flagDurationMs('heartbeat-interval', flags['heartbeat-interval']);
  const where = flags.config ?? '';
  const open = file.clients === undefined || file.scrapers === undefined;
  // Loopback is private only when nothing in front makes it public.
  const behindReverseProxy = file.behind_reverse_proxy === true;
  const openToNetwork = open && (behindReverseProxy || !isLoopbackHost(listen.host));
  if (openToNetwork && !flags.insecure) {
    const missing = [
      file.clients === undefined ? '"clients:" (client tokens)' : '',
      file.scrapers === undefined ? '"scrapers:" (scraper credentials)' : '',
    ].filter(Boolean);
    const address = formatHostPort(listen.host, listen.port);
    throw new ConfigError(
      `refusing to listen on ${address}${behindReverseProxy ? ' behind a reverse proxy (behind_reverse_proxy: true)' : ''} without ${missing.join(' and ')}${where ? ` in ${where}` : ' (no --config given)'}: anyone who reaches it could ${file.clients === undefined ? 'register names' : 'scrape through it'}. Add them to the config (natprox token, natprox hash-password print the lines)${behindReverseProxy ? '' : ', listen on 127.0.0.1'}, or pass --insecure to run open anyway`,
    );
  }
  const clientGrants = file.clients?.map((entry): ClientGrant => ({
    names: entry.names,
    ...(entry.token_sha256 ? { tokenSha256: entry.token_sha256 } : {}),
    ...(entry.cert_subject ? { certSubject: entry.cert_subject.toLowerCase() } : {}),
    ...(entry.cert_sha256 ? { certSha256: normalizeFingerprint(entry.cert_sha256) } : {}),
    ...(entry.max_names ? { maxNames: entry.max_names } : {}),
    ...(entry.max_tunnels ? { maxTunnels: entry.max_tunnels } : {}),
  }));
  checkCertificateGrants(clientGrants, file.tls, where);
  const warnings: string[] = [];
  return {
    openToNetwork,
    warnings,
    proxy: {
      listen,
      tls: file.tls ? readTls(file.tls, clientGrants, where, warnings) : undefined,
      defaultScrapeTimeoutMs,
      maxScrapeTimeoutMs,
      clientGrants,
      ...(file.public_names ? { publicNames: file.public_names } : {}),
      scrapers: credentials(file.scrapers),
      operators: credentials(file.operators),
      limits: proxyLimits(file.limits),
      longPoll: {
        ...(file.long_poll?.repoll_grace ? { repollGraceMs: file.long_poll.repoll_grace } : {}),
      },
      heartbeat: heartbeatIntervalMs
        ? { ...DEFAULT_HEARTBEAT, intervalMs: heartbeatIntervalMs }
        : DEFAULT_HEARTBEAT,
    },
    shutdownGraceMs:
      flagDurationMs('shutdown-grace', flags['shutdown-grace']) ??
      file.shutdown_grace ??
      DEFAULT_SHUTDOWN_GRACE_MS,
  };
}

/** Each `limits:` field of the config file and the ProxyLimits field it sets. */
const LIMIT_FIELDS = {
  max_clients: 'maxClients',
  max_streams_per_client: 'maxStreamsPerClient',
  max_names_per_client: 'maxNamesPerClient',
  max_labels_per_client: 'maxLabelsPerClient',
  max_ports_per_client: 'maxPortsPerClient',
  max_names_per_entry: 'maxNamesPerEntry',
  max_tunnels_per_name: 'maxTunnelsPerName',
  max_request_bytes: 'maxRequestBytes',
  max_response_bytes: 'maxResponseBytes',
  max_streams_per_scraper: 'maxStreamsPerScraper',
  max_pipelined_requests: 'maxPipelinedRequests',
  max_tunnel_control_bytes_per_second: 'maxTunnelControlBytesPerSecond',
  flood_block: 'floodBlockMs',
} as const satisfies Record<keyof NonNullable<ProxyFile['limits']>, keyof ProxyLimits>;

/** The limits the file sets; the rest keep their defaults. */
function proxyLimits(limits: ProxyFile['limits']): Partial<ProxyLimits> {
  const out: Partial<Record<keyof ProxyLimits, number>> = {};
  for (const [field, key] of Object.entries(LIMIT_FIELDS)) {
    const value = limits?.[field as keyof typeof LIMIT_FIELDS];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** 127.0.0.0/8, ::1 and "localhost": only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Certificate grants need TLS, and grants by subject need a CA to vouch for the subject. */
function checkCertificateGrants(
  grants: readonly ClientGrant[] | undefined,
  tls: ProxyFile['tls'],
  where: string,
): void {
  const index = (test: (grant: ClientGrant) => boolean): number => grants?.findIndex(test) ?? -1;
  const byCert = index((grant) => grant.tokenSha256 === undefined);
  if (byCert >= 0 && tls === undefined) {
    throw new ConfigError(
      `${where}: clients[${byCert}]: a client certificate needs TLS on the proxy; add tls: with cert_file and key_file, or give the client a token (token_sha256)`,
    );
  }
  const bySubject = index((grant) => grant.certSubject !== undefined);
  if (bySubject >= 0 && tls?.client_ca_file === undefined) {
    throw new ConfigError(
      `${where}: clients[${bySubject}]: cert_subject needs tls.client_ca_file, the CA that signs client certificates (anyone can make a certificate with any subject); or pin the certificate with cert_sha256`,
    );
  }
}

function readTls(
  tls: NonNullable<ProxyFile['tls']>,
  grants: readonly ClientGrant[] | undefined,
  where: string,
  warnings: string[],
): ProxyTls {
  const read = (field: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(
        `${where}: tls.${field}: cannot read ${file}: ${(err as Error).message}`,
      );
    }
  };
  const cert = read('cert_file', tls.cert_file);
  const secretKey = readSecretFile(tls.key_file, 'the key file', `${where}: tls.key_file`);
  warnings.push(...secretKey.warnings);
  const key = secretKey.data;
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(
      `${where}: tls: the certificate ${tls.cert_file} and key ${tls.key_file} do not load: ${(err as Error).message}; both must be PEM and belong together`,
    );
  }
  let clientCa: Buffer | undefined;
  if (tls.client_ca_file !== undefined) {
    clientCa = read('client_ca_file', tls.client_ca_file);
    const pem = clientCa.toString('latin1');
    try {
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
      createSecureContext({ ca: clientCa });
    } catch (err) {
      throw new ConfigError(
        `${where}: tls.client_ca_file: ${tls.client_ca_file} does not load: ${(err as Error).message}; expected the PEM certificate of the CA that signs client certificates`,
      );
    }
  }
  const requestClientCert = clientCa !== undefined || acceptsCertificates(grants ?? []);
  return { cert, key, clientCa, requestClientCert };
}

/**
 * Proxy settings from flags and the config file, loading the YAML parser and the schema
 * validator only when there is a file (they cost a proxy without one ~10 MiB; bench/README.md).
 */
export async function loadProxySettings(flags: ProxyFlags): Promise<ProxySettings> {
  if (!flags.config) return proxySettingsFrom(flags, {});
  const [{ loadYamlFile }, { proxyFileSchema }] = await Promise.all([
    import('./load-file.js'),
    import('./schema.js'),
  ]);
  return proxySettingsFrom(flags, loadYamlFile(flags.config, proxyFileSchema));
}
