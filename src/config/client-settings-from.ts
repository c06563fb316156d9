import { hostname } from 'node:os';
import type { AllowedTarget } from '../client/allowlist.js';
import type { ClientOptions } from '../client/client-options.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_HEARTBEAT } from '../wire/heartbeat.js';
import { validateLabelName, validateLabelValue, validateName } from '../wire/protocol.js';
import type { HostPort } from '../util/host-port.js';
import {
  DEFAULT_LOCAL_HOST,
  methodsProblem,
  parseAllowText,
  pathPrefixProblem,
} from './allow-entry.js';
import { resolveClientProxies, type ClientProxyFlags } from './client-proxies.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, flagDurationMs, flagHostPort } from './flag-values.js';
import type { AllowEntry, ClientFile } from './schema.js';

export interface ClientFlags extends ClientProxyFlags {
  'connect-all-addresses'?: boolean | undefined;
  transport?: string | undefined;
  name?: string[] | undefined;
  allow?: string[] | undefined;
  label?: string[] | undefined;
  config?: string | undefined;
  'metrics-listen'?: string | undefined;
  'shutdown-grace'?: string | undefined;
  'heartbeat-interval'?: string | undefined;
}

export interface ClientSettings {
  client: ClientOptions;
  metricsListen: HostPort | undefined;
  shutdownGraceMs: number;
  /** How a token or key file is kept, worth a warning at start (see readSecretFile). */
  warnings: string[];
}

function allowedTarget(entry: AllowEntry, where: string): AllowedTarget {
  if (typeof entry === 'number') return { host: DEFAULT_LOCAL_HOST, port: entry };
  if (typeof entry === 'string') {
    const parsed = parseAllowText(entry);
    if (typeof parsed === 'string') throw new ConfigError(`${where}: ${parsed}`);
    return parsed;
  }
  for (const path of entry.paths ?? []) {
    const problem = pathPrefixProblem(path);
    if (problem) throw new ConfigError(`${where}: ${problem}`);
  }
  const methods = entry.methods?.map((method) => method.toUpperCase());
  const problem = methods && methodsProblem(methods);
  if (problem) throw new ConfigError(`${where}: methods: ${problem}`);
  return {
    host: entry.host ?? DEFAULT_LOCAL_HOST,
    port: entry.port,
    ...(entry.paths ? { pathPrefixes: entry.paths } : {}),
    ...(methods ? { methods: [...new Set(methods)] } : {}),
  };
}

function parseLabelFlag(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--label: expected KEY=VALUE, got "${text}"`);
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const problem = validateLabelName(key) ?? validateLabelValue(key, value);
  if (problem) throw new ConfigError(`--label: ${problem}`);
  return [key, value];
}

/**
 * Combines the config file `flags.config`, already read and validated into `file` ({} without
 * one), and flags into client settings; flags win. Loads no YAML parser or schema: see
 * client-settings.ts.
 */
export function clientSettingsFrom(flags: ClientFlags, file: ClientFile): ClientSettings {
  const source = flags.config ?? '';
  const warnings: string[] = [];
  const proxies = resolveClientProxies(flags, file, source, warnings);
  const connectAllAddresses = flags['connect-all-addresses'] ?? file.connect_all_addresses;

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
  if (transport === 'pushprox' && connectAllAddresses) {
    throw new ConfigError(
      `${flags['connect-all-addresses'] ? '--connect-all-addresses' : `${source}: connect_all_addresses`}: works with the native transport only; list each PushProx proxy with its own --proxy-url instead`,
    );
  }
  const labels = { ...file.labels, ...Object.fromEntries((flags.label ?? []).map(parseLabelFlag)) };
  const metricsListenText = flags['metrics-listen'] ?? file.metrics_listen;
  const heartbeatIntervalMs = flagDurationMs('heartbeat-interval', flags['heartbeat-interval']);

  return {
    client: {
      // One proxy keeps the short form (proxyUrl, token, tls); several are listed.
      ...(proxies.length === 1 && proxies[0] ? { proxyUrl: proxies[0].url } : { proxies }),
      ...(connectAllAddresses ? { connectAllAddresses } : {}),
      ...(transport === 'pushprox' ? { transport } : {}),
      names: [...new Set(names)],
      allow,
      labels,
      ...(proxies.length === 1 && proxies[0]
        ? { token: proxies[0].token, tls: proxies[0].tls }
        : {}),
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
    // A file shared by several proxies is read, and judged, once for each.
    warnings: [...new Set(warnings)],
  };
}

function clientTransport(text: string | undefined, where: string): 'native' | 'pushprox' {
  if (text === undefined || text === 'native') return 'native';
  if (text === 'pushprox') return 'pushprox';
  throw new ConfigError(
    `${where}: expected "native" (the natprox tunnel) or "pushprox" (PushProx long-polling, for a PushProx proxy), got "${text}"`,
  );
}

/**
 * resolveClientSettings for the CLI: the YAML parser and the schema validator (yaml and zod,
 * about 15 MiB resident together) are imported only when there is a config file to read.
 */
export async function loadClientSettings(flags: ClientFlags): Promise<ClientSettings> {
  if (!flags.config) return clientSettingsFrom(flags, {});
  const [{ loadYamlFile }, { clientFileSchema }] = await Promise.all([
    import('./load-file.js'),
    import('./schema.js'),
  ]);
  return clientSettingsFrom(flags, loadYamlFile(flags.config, clientFileSchema));
}
