import { validateLabelName, validateName } from '../wire/protocol.js';
import { parseHostPort } from '../util/host-port.js';
import { redactUrl } from '../util/redact-url.js';
import { CONFIG_HELP } from './help.js';
import { parseFlags } from './parse-flags.js';
import { homePrometheusYaml, vpsPrometheusYaml } from './prometheus-yaml.js';
import { UsageError } from './usage-error.js';

const DEFAULT_MATCH = '{job="node"}';
const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

/** `natprox config prometheus|home …`: prints Prometheus configuration for each side. */
export function configCommand(args: string[]): number {
  const [what, ...rest] = args;
  if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
    process.stdout.write(CONFIG_HELP);
    return what === undefined ? 2 : 0;
  }
  if (what === 'prometheus') return prometheusConfig(rest);
  if (what === 'home') return homeConfig(rest);
  throw new UsageError(
    `unknown config "${what}": expected "prometheus" (the VPS scrape jobs) or "home" (the home Prometheus)`,
    'config',
  );
}

function usage(message: string): UsageError {
  return new UsageError(message, 'config');
}

function prometheusConfig(args: string[]): number {
  const flags = parseFlags('config', args, {
    ...HELP_FLAG,
    'proxy-url': { type: 'string' },
    name: { type: 'string', multiple: true },
    port: { type: 'string' },
    match: { type: 'string', multiple: true },
    label: { type: 'string', multiple: true },
    'http-sd': { type: 'boolean' },
    'remote-read': { type: 'boolean' },
    operator: { type: 'string' },
    'ca-file': { type: 'string' },
    job: { type: 'string' },
    'sd-job': { type: 'string' },
    'proxy-job': { type: 'string' },
  });
  if (flags.help) {
    process.stdout.write(CONFIG_HELP);
    return 0;
  }
  const proxyUrl = parseProxyUrl(flags['proxy-url']);
  const names = flags.name ?? [];
  if (names.length === 0) {
    throw usage('--name is required: the name the natprox client registers, e.g. raspberrypi');
  }
  for (const name of names) {
    const problem = validateName(name);
    if (problem) throw usage(`--name: ${problem}`);
  }
  const port = parsePort(flags.port);
  const matches = flags.match?.length ? flags.match : [DEFAULT_MATCH];
  for (const match of matches) {
    if (match.trim() === '' || /[\r\n]/.test(match)) {
      throw usage(`--match: expected a series selector such as '{job="node"}', got "${match}"`);
    }
  }
  process.stdout.write(
    vpsPrometheusYaml({
      proxyUrl,
      names,
      port,
      matches,
      labels: parseLabels(flags.label ?? []),
      jobName: jobName('--job', flags.job ?? 'federate'),
      operator: parseOperator(flags.operator),
      caFile: flags['ca-file'],
      httpSd: flags['http-sd'] === true,
      sdJobName: jobName('--sd-job', flags['sd-job'] ?? 'natprox'),
      proxyJobName: jobName('--proxy-job', flags['proxy-job'] ?? 'natprox-proxy'),
      remoteRead: flags['remote-read'] === true,
    }),
  );
  return 0;
}

function homeConfig(args: string[]): number {
  const flags = parseFlags('config', args, {
    ...HELP_FLAG,
    label: { type: 'string', multiple: true },
    'node-exporter': { type: 'string' },
    job: { type: 'string' },
  });
  if (flags.help) {
    process.stdout.write(CONFIG_HELP);
    return 0;
  }
  const labels = flags.label ?? [];
  if (labels.length === 0) {
    throw usage(
      "--label is required: the external label that marks this site's series, e.g. --label location=home",
    );
  }
  const externalLabels = parseLabels(labels);
  const nodeExporter = flags['node-exporter'] ?? 'localhost:9100';
  const parsed = parseHostPort(nodeExporter);
  if (typeof parsed === 'string' || parsed.port === 0) {
    throw usage(
      `--node-exporter: expected HOST:PORT such as localhost:9100${typeof parsed === 'string' ? `; ${parsed}` : ''}`,
    );
  }
  process.stdout.write(
    homePrometheusYaml({
      externalLabels,
      nodeExporter,
      jobName: jobName('--job', flags.job ?? 'node'),
    }),
  );
  return 0;
}

/** KEY=VALUE flags; `job`, `instance` and `__*` are refused (validateLabelName). */
function parseLabels(texts: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const text of texts) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw usage(`--label: expected KEY=VALUE, got "${text}"`);
    const key = text.slice(0, eq);
    const problem = validateLabelName(key);
    if (problem) throw usage(`--label: ${problem}`);
    labels[key] = text.slice(eq + 1);
  }
  return labels;
}

function parseOperator(
  text: string | undefined,
): { username: string; password: string } | undefined {
  if (text === undefined) return undefined;
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw usage(
      '--operator: expected USER:PASSWORD, the credentials of an operators: entry of the proxy',
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function parseProxyUrl(text: string | undefined): URL {
  if (text === undefined) {
    throw usage(
      '--proxy-url is required: the proxy as the VPS Prometheus reaches it, with the scraper credentials, e.g. https://prometheus:PASSWORD@vps.example:8443',
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(
      `--proxy-url: "${redactUrl(text)}" is not a URL; expected https://USER:PASSWORD@HOST:PORT`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usage(`--proxy-url: expected an http:// or https:// URL, got ${url.protocol}//`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw usage(
      `--proxy-url: the proxy is addressed by scheme, host and port only; drop "${url.pathname}${url.search}${url.hash}"`,
    );
  }
  return url;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) {
    throw usage('--port is required: the home Prometheus port the client allows, e.g. 9090');
  }
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw usage(`--port: expected a port between 1 and 65535, got "${text}"`);
  }
  return port;
}

function jobName(flag: string, name: string): string {
  if (name.trim() === '' || /[\r\n]/.test(name)) {
    throw usage(`${flag}: expected a job name such as "federate", got "${name}"`);
  }
  return name;
}
