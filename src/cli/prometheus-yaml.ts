import { stringify } from 'yaml';

/** What `natprox config prometheus` needs to write the VPS Prometheus's scrape jobs. */
export interface VpsJobsOptions {
  /** The proxy as Prometheus reaches it, with scraper credentials as user:password@. */
  proxyUrl: URL;
  /** Names the clients register; one federate target each. */
  names: string[];
  /** The home Prometheus's port on the client's side (what `--allow` lets through). */
  port: number;
  /** match[] selectors for /federate. */
  matches: string[];
  jobName: string;
  /** A CA (PEM) that signed the proxy's certificate, when it is not a public one. */
  caFile: string | undefined;
  /** Also a job that discovers every client and port from the proxy's /clients. */
  httpSd: boolean;
  sdJobName: string;
}

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
 * The VPS Prometheus's scrape jobs: `federate` pulls the home Prometheus's /federate through
 * the proxy; with `httpSd`, a second job scrapes /metrics of every other NAME:PORT the
 * proxy's /clients lists. Returns a whole prometheus.yml (just `scrape_configs:`).
 */
export function vpsPrometheusYaml(options: VpsJobsOptions): string {
  const { proxyUrl } = options;
  const jobs: Yaml[] = [
    {
      job_name: options.jobName,
      honor_labels: true,
      metrics_path: '/federate',
      params: { 'match[]': options.matches },
      proxy_url: proxyUrlText(proxyUrl),
      ...tlsConfig(options.caFile),
      static_configs: [{ targets: options.names.map((name) => `${name}:${options.port}`) }],
    },
  ];
  if (options.httpSd) {
    // natprox answers /clients with operator credentials, which default to the scrapers'.
    const basicAuth = proxyUrl.username
      ? {
          basic_auth: {
            username: decodeURIComponent(proxyUrl.username),
            password: decodeURIComponent(proxyUrl.password),
          },
        }
      : {};
    jobs.push({
      job_name: options.sdJobName,
      proxy_url: proxyUrlText(proxyUrl),
      ...tlsConfig(options.caFile),
      http_sd_configs: [
        { url: `${proxyOrigin(proxyUrl)}/clients`, ...basicAuth, ...tlsConfig(options.caFile) },
      ],
      // The home Prometheus's port is federated by the first job (and its client may allow
      // only /federate there), so this job leaves it out.
      relabel_configs: [
        { source_labels: ['__address__'], regex: `.+:${options.port}`, action: 'drop' },
      ],
    });
  }
  const header = [
    '# Scrape jobs for the public (VPS) Prometheus, written by natprox config prometheus.',
    '# This is a complete prometheus.yml; to add the jobs to an existing one, copy the',
    '# entries under scrape_configs: into its scrape_configs: list.',
  ];
  if (!proxyUrl.username) {
    header.push(
      '# No scraper credentials in --proxy-url: if the proxy has "scrapers:", put them in',
      '# proxy_url as https://USER:PASSWORD@host:port/.',
    );
  }
  return `${header.join('\n')}\n${stringify({ scrape_configs: jobs }, { lineWidth: 0 })}`;
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
