import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AllowedTarget } from '../client/allowlist.js';
import type { ClientOptions } from '../client/natprox-client.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_HEARTBEAT } from '../tunnel/heartbeat.js';
import { normalizeFingerprint, type ClientTls } from '../tunnel/tls-connect.js';
import { validateLabelName, validateName } from '../tunnel/protocol.js';
import { parseHostPort, type HostPort } from '../util/host-port.js';
import { loadYamlFile } from './load-file.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, flagDurationMs, flagHostPort } from './proxy-settings.js';
import { clientFileSchema, type AllowEntry, type ClientFile } from './schema.js';

export interface ClientFlags {
  'proxy-url'?: string | undefined;
  transport?: string | undefined;
  name?: string[] | undefined;
  allow?: string[] | undefined;
  label?: string[] | undefined;
  config?: string | undefined;
  'token-file'?: string | undefined;
  'ca-file'?: string | undefined;
  'tls-fingerprint'?: string | undefined;
  'metrics-listen'?: string | undefined;
  'shutdown-grace'?: string | undefined;
  'heartbeat-interval'?: string | undefined;
}

export interface ClientSettings {
  client: ClientOptions;
  metricsListen: HostPort | undefined;
  shutdownGraceMs: number;
}

const DEFAULT_LOCAL_HOST = '127.0.0.1';

function allowedTarget(entry: AllowEntry, where: string): AllowedTarget {
  if (typeof entry === 'number') return { host: DEFAULT_LOCAL_HOST, port: entry };
  if (typeof entry === 'string') {
    const parsed = parseHostPort(entry, DEFAULT_LOCAL_HOST);
    if (typeof parsed === 'string' || parsed.port === 0) {
      throw new ConfigError(`${where}: expected PORT or HOST:PORT, got "${entry}"`);
    }
    return parsed;
  }
  return {
    host: entry.host ?? DEFAULT_LOCAL_HOST,
    port: entry.port,
    ...(entry.paths ? { pathPrefixes: entry.paths } : {}),
  };
}

function parseLabelFlag(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--label: expected KEY=VALUE, got "${text}"`);
  const key = text.slice(0, eq);
  const problem = validateLabelName(key);
  if (problem) throw new ConfigError(`--label: ${problem}`);
  return [key, text.slice(eq + 1)];
}

function parseProxyUrl(text: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(
      `${where}: "${text}" is not a URL; expected http://HOST:PORT or https://HOST (IPv6 as http://[ADDR]:PORT)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${where}: expected an http:// or https:// URL, got ${url.protocol}//`);
  }
  return url;
}

function readToken(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${where}: cannot read the token file: ${(err as Error).message}`);
  }
  const token = text.replace(/\r?\n$/, '');
  if (token === '') throw new ConfigError(`${where}: the token file ${file} is empty`);
  return token;
}

/** Combines the config file (if any) and flags into client settings; flags win. */
export function resolveClientSettings(flags: ClientFlags): ClientSettings {
  const source = flags.config ?? '';
  const file: ClientFile = flags.config ? loadYamlFile(flags.config, clientFileSchema) : {};
  const proxyUrlText = flags['proxy-url'] ?? file.proxy_url;
  if (!proxyUrlText) {
    throw new ConfigError(
      `--proxy-url is required${flags.config ? ` (${flags.config} has no proxy_url either)` : ' (or proxy_url in --config)'}: the address of natprox proxy, e.g. http://vps.example:8080`,
    );
  }
  const proxyUrl = parseProxyUrl(
    proxyUrlText,
    flags['proxy-url'] ? '--proxy-url' : `${source}: proxy_url`,
  );

  const names = (flags.name?.length ? flags.name : file.names) ?? [hostname().toLowerCase()];
  for (const name of names) {
    const problem = validateName(name);
    if (problem)
      throw new ConfigError(`${flags.name?.length ? '--name' : `${source}: names`}: ${problem}`);
  }

  const allow = flags.allow?.length
    ? flags.allow.map((text) => allowedTarget(text, '--allow'))
    : (file.allow ?? []).map((entry, i) => allowedTarget(entry, `${source}: allow[${i}]`));
  if (allow.length === 0) {
    throw new ConfigError(
      'nothing to scrape: give at least one --allow PORT or --allow HOST:PORT (or allow: in the config file); the client fetches nothing else',
    );
  }
  const ports = new Map<number, string>();
  for (const target of allow) {
    const previous = ports.get(target.port);
    if (previous !== undefined && previous !== target.host) {
      throw new ConfigError(
        `${flags.allow?.length ? '--allow' : `${source}: allow`}: port ${target.port} is allowed for both ${previous} and ${target.host}; a scrape names only the port, so each port may map to one host`,
      );
    }
    ports.set(target.port, target.host);
  }

  const transport = clientTransport(
    flags.transport ?? file.transport,
    flags.transport ? '--transport' : `${source}: transport`,
  );
  if (transport === 'pushprox' && names.length !== 1) {
    throw new ConfigError(
      `--transport pushprox serves exactly one name (a PushProx client polls with one FQDN), got ${names.length}: ${names.join(', ')}; run one client per name`,
    );
  }
  const labels = { ...file.labels, ...Object.fromEntries((flags.label ?? []).map(parseLabelFlag)) };
  const tokenFile = flags['token-file'] ?? file.token_file;
  const token = tokenFile
    ? readToken(tokenFile, flags['token-file'] ? '--token-file' : `${source}: token_file`)
    : undefined;
  const tls = clientTls(flags, file, proxyUrl, source);
  const metricsListenText = flags['metrics-listen'] ?? file.metrics_listen;
  const heartbeatIntervalMs = flagDurationMs('heartbeat-interval', flags['heartbeat-interval']);

  return {
    client: {
      proxyUrl,
      ...(transport === 'pushprox' ? { transport } : {}),
      names: [...new Set(names)],
      allow,
      labels,
      token,
      tls,
      heartbeat: heartbeatIntervalMs
        ? { ...DEFAULT_HEARTBEAT, intervalMs: heartbeatIntervalMs }
        : DEFAULT_HEARTBEAT,
    },
    metricsListen: metricsListenText
      ? flagHostPort('metrics-listen', metricsListenText)
      : undefined,
    shutdownGraceMs:
      flagDurationMs('shutdown-grace', flags['shutdown-grace']) ??
      file.shutdown_grace ??
      DEFAULT_SHUTDOWN_GRACE_MS,
  };
}

function clientTransport(text: string | undefined, where: string): 'native' | 'pushprox' {
  if (text === undefined || text === 'native') return 'native';
  if (text === 'pushprox') return 'pushprox';
  throw new ConfigError(
    `${where}: expected "native" (the natprox tunnel) or "pushprox" (PushProx long-polling, for a PushProx proxy), got "${text}"`,
  );
}

function clientTls(
  flags: ClientFlags,
  file: ClientFile,
  proxyUrl: URL,
  source: string,
): ClientTls | undefined {
  const caFile = flags['ca-file'] ?? file.ca_file;
  const pinText = flags['tls-fingerprint'] ?? file.tls_fingerprint;
  if (caFile === undefined && pinText === undefined) return undefined;
  if (proxyUrl.protocol !== 'https:') {
    throw new ConfigError(
      `--ca-file and --tls-fingerprint apply to https:// proxy URLs; ${proxyUrl.origin} is plain http`,
    );
  }
  const caWhere = flags['ca-file'] ? '--ca-file' : `${source}: ca_file`;
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new ConfigError(`${caWhere}: cannot read ${caFile}: ${(err as Error).message}`);
    }
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      throw new ConfigError(`${caWhere}: ${caFile} holds no PEM certificate`);
    }
  }
  let pinSha256: string | undefined;
  if (pinText !== undefined) {
    pinSha256 = normalizeFingerprint(pinText);
    if (pinSha256 === undefined) {
      throw new ConfigError(
        `--tls-fingerprint: expected the certificate's SHA-256 fingerprint, 64 hex digits with or without colons (openssl x509 -noout -fingerprint -sha256 -in cert.pem), got "${pinText}"`,
      );
    }
  }
  return { ca, pinSha256 };
}
