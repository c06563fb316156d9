import { stringify } from 'yaml';

/** What `natprox config prometheus` needs to write the VPS Prometheus's configuration. */
export interface VpsJobsOptions {
  /** The proxy as Prometheus reaches it, with scraper credentials as user:password@. */
  proxyUrl: URL;
  /** Names the clients register; one federate target each. */
  names: string[];
  /** The home Prometheus's port on the client's side (what `--allow` lets through). */
  port: number;
  /** match[] selectors for /federate. */
  matches: string[];
  /** Target labels of the federate job (e.g. location=home), so `up` carries them too. */
  labels: Record<string, string>;
  jobName: string;
  /** Operator credentials for /clients and /metrics; default the scraper's from proxyUrl. */
  operator: { username: string; password: string } | undefined;
  /** A CA (PEM) that signed the proxy's certificate, when it is not a public one. */
  caFile: string | undefined;
  /** Also a job that discovers every client and port from the proxy's /clients. */
  httpSd: boolean;
  sdJobName: string;
  proxyJobName: string;
  /** Also remote_read of each home Prometheus through the proxy (gap-free history). */
  remoteRead: boolean;
}

/** How often the --http-sd job asks /clients: a reconnected client is back within it. */
export const SD_REFRESH_INTERVAL = '5s';
/** What `natprox config home` needs to write the home Prometheus's config. */
export interface HomeConfigOptions {
  externalLabels: Record<string, string>;
  nodeExporter: string;
  jobName: string;
}

type Yaml = Record<string, unknown>;

/** The proxy's URL without credentials, path, query or fragment: https://vps.example:8443 */
function proxyOrigin(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** proxy_url as Prometheus wants it: scheme, credentials, host and port, path "/". */
function proxyUrlText(url: URL): string {
  const credentials = url.username
    ? `${url.username}${url.password ? `:${url.password}` : ''}@`
    : '';
  return `${url.protocol}//${credentials}${url.host}/`;
}

function tlsConfig(caFile: string | undefined): Yaml {
  return caFile === undefined ? {} : { tls_config: { ca_file: caFile } };
}

/**
 * The VPS Prometheus's configuration: `federate` pulls the home Prometheus's /federate
 * through the proxy, a job scrapes the proxy's own /metrics, `httpSd` adds a job for the
 * clients federation does not cover, `remoteRead` reads the home Prometheus's history
 * through the tunnel. Returns a whole prometheus.yml.
 */
export function vpsPrometheusYaml(options: VpsJobsOptions): string {
  const jobs: Yaml[] = [federateJob(options), proxyMetricsJob(options)];
  if (options.httpSd) jobs.push(discoveryJob(options));
  const config: Yaml = { scrape_configs: jobs };
  if (options.remoteRead) config.remote_read = remoteReadEntries(options);
  return `${vpsHeader(options).join('\n')}\n${stringify(config, { lineWidth: 0 })}`;
}

function federateJob(options: VpsJobsOptions): Yaml {
  const hasLabels = Object.keys(options.labels).length > 0;
  return {
    job_name: options.jobName,
    honor_labels: true,
    metrics_path: '/federate',
    params: { 'match[]': options.matches },
    proxy_url: proxyUrlText(options.proxyUrl),
    ...tlsConfig(options.caFile),
    static_configs: [
      {
        targets: options.names.map((name) => `${name}:${options.port}`),
        ...(hasLabels ? { labels: options.labels } : {}),
      },
    ],
  };
}

/** The proxy's /metrics (natprox_*), which the natprox Grafana dashboard shows. */
function proxyMetricsJob(options: VpsJobsOptions): Yaml {
  const { proxyUrl } = options;
  return {
    job_name: options.proxyJobName,
    scheme: proxyUrl.protocol.slice(0, -1),
    ...operatorAuth(options),
    ...tlsConfig(options.caFile),
    static_configs: [{ targets: [proxyUrl.host] }],
  };
}

/**
 * Every client and port from the proxy's /clients, but the names federation already
 * brings: their series would be stored twice (once per job).
 */
function discoveryJob(options: VpsJobsOptions): Yaml {
  return {
    job_name: options.sdJobName,
    proxy_url: proxyUrlText(options.proxyUrl),
    ...tlsConfig(options.caFile),
    http_sd_configs: [
      {
        url: `${proxyOrigin(options.proxyUrl)}/clients`,
        refresh_interval: SD_REFRESH_INTERVAL,
        ...operatorAuth(options),
        ...tlsConfig(options.caFile),
      },
    ],
    relabel_configs: [
      {
        source_labels: ['__meta_natprox_name'],
        regex: options.names.map(escapeRegex).join('|'),
        action: 'drop',
      },
    ],
  };
}

/**
 * The home Prometheus's /api/v1/read through the proxy. Prometheus merges what it reads
 * with what it federated, so a query over an outage of the link returns the samples the
 * home Prometheus kept. read_recent: the gaps are in the recent past too.
 */
function remoteReadEntries(options: VpsJobsOptions): Yaml[] {
  return options.names.map((name) => ({
    url: `http://${name}:${options.port}/api/v1/read`,
    proxy_url: proxyUrlText(options.proxyUrl),
    read_recent: true,
    ...tlsConfig(options.caFile),
  }));
}

function operatorAuth(options: VpsJobsOptions): Yaml {
  const { proxyUrl } = options;
  const operator =
    options.operator ??
    (proxyUrl.username
      ? {
          username: decodeURIComponent(proxyUrl.username),
          password: decodeURIComponent(proxyUrl.password),
        }
      : undefined);
  return operator ? { basic_auth: operator } : {};
}

function vpsHeader(options: VpsJobsOptions): string[] {
  const header = [
    '# The public (VPS) Prometheus, written by natprox config prometheus.',
    '# This is a complete prometheus.yml; to add it to an existing one, copy the entries',
    '# under scrape_configs: (and remote_read:) into its lists.',
    `# ${options.proxyJobName}: the proxy's own /metrics, with the operator credentials (the`,
    "# scrapers' unless the proxy has operators:; then pass --operator USER:PASSWORD).",
  ];
  if (options.httpSd) {
    header.push(
      `# ${options.sdJobName}: every client the proxy lists at /clients, except the federated`,
      '# names, whose series federation already brings (each would be stored twice).',
    );
  }
  if (options.remoteRead) {
    header.push(
      "# remote_read: each home Prometheus's history through the tunnel, so a query over an",
      '# outage of the home link returns what the home Prometheus kept. The client must',
      `# allow it: --allow 'POST ${options.port}/api/v1/read' (GET and HEAD are all --allow ${options.port} grants).`,
    );
  }
  if (!options.proxyUrl.username) {
    header.push(
      '# No scraper credentials in --proxy-url: if the proxy has "scrapers:", put them in',
      '# proxy_url as https://USER:PASSWORD@host:port/.',
    );
  }
  return header;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The home Prometheus's config: external labels that mark every federated series, and a
 * job that scrapes node_exporter. Returns a whole prometheus.yml.
 */
export function homePrometheusYaml(options: HomeConfigOptions): string {
  const header = [
    '# The home Prometheus, written by natprox config home: its external labels mark every',
    '# series the VPS Prometheus federates, and the job scrapes node_exporter.',
    '# This is a complete prometheus.yml; to add it to an existing one, merge',
    '# global.external_labels into its global: block and the job into its scrape_configs:.',
  ];
  const config = {
    global: { external_labels: options.externalLabels },
    scrape_configs: [
      { job_name: options.jobName, static_configs: [{ targets: [options.nodeExporter] }] },
    ],
  };
  return `${header.join('\n')}\n${stringify(config, { lineWidth: 0 })}`;
}
