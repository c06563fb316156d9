/**
 * A real Prometheus (Debian's /usr/bin/prometheus) on a free loopback port with its own
 * temporary storage, and a small client for its HTTP API.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, poll, type ProcessGroup, type RunningProcess } from './processes.js';

export interface Sample {
  /** Unix time in milliseconds (Prometheus: the start of the scrape). */
  atMs: number;
  value: number;
}

export interface Series {
  labels: Record<string, string>;
  samples: Sample[];
}

export interface PrometheusServer {
  process: RunningProcess;
  port: number;
  url: string;
  /** An instant query; the vector's series with their one sample. */
  query(promql: string): Promise<Series[]>;
  /** A range query from `startMs` to `endMs` every `stepS` seconds (query_range). */
  queryRange(promql: string, startMs: number, endMs: number, stepS: number): Promise<Series[]>;
  /** The raw samples of `selector` over the last `seconds` (a range-vector instant query). */
  rawSamples(selector: string, seconds: number): Promise<Series[]>;
  /** Polls an instant query until `accept` returns a value (bounded by `timeoutMs`). */
  waitFor<T>(
    promql: string,
    accept: (series: Series[]) => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T>;
  /** The scrape targets with their health and last error, one line each (for failure reports). */
  targetsSummary(): Promise<string>;
}

interface ApiResponse {
  status: 'success' | 'error';
  error?: string;
  data?: unknown;
}

async function api(base: string, path: string, params: Record<string, string>): Promise<unknown> {
  const url = new URL(path, base);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = (await response.json()) as ApiResponse;
  if (body.status !== 'success') {
    throw new Error(`${url.pathname}: ${response.status} ${body.error ?? 'error'}`);
  }
  return body.data;
}

type PromValue = [number, string];
interface VectorResult {
  resultType: 'vector' | 'matrix';
  result: Array<{ metric: Record<string, string>; value?: PromValue; values?: PromValue[] }>;
}

function toSeries(data: unknown): Series[] {
  const { result } = data as VectorResult;
  return result.map((entry) => ({
    labels: entry.metric,
    samples: (entry.values ?? (entry.value ? [entry.value] : [])).map(([at, value]) => ({
      atMs: Math.round(at * 1000),
      value: Number(value),
    })),
  }));
}

/** Starts Prometheus with `configYaml` in `dir` (config file and TSDB); resolves when it is ready. */
export async function startPrometheus(
  group: ProcessGroup,
  name: string,
  binary: string,
  dir: string,
  configYaml: string,
): Promise<PrometheusServer> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, configYaml);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = group.start(name, binary, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=info',
  ]);
  await poll(
    async () => {
      if (!proc.running) throw new Error(`${name} exited during start-up`);
      const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return response.status === 200 ? true : undefined;
    },
    20_000,
    `${name} to be ready on ${url}`,
  );
  const server: PrometheusServer = {
    process: proc,
    port,
    url,
    query: async (promql) => toSeries(await api(url, '/api/v1/query', { query: promql })),
    queryRange: async (promql, startMs, endMs, stepS) =>
      toSeries(
        await api(url, '/api/v1/query_range', {
          query: promql,
          start: String(startMs / 1000),
          end: String(endMs / 1000),
          step: String(stepS),
        }),
      ),
    rawSamples: async (selector, seconds) =>
      toSeries(await api(url, '/api/v1/query', { query: `${selector}[${seconds}s]` })),
    waitFor: (promql, accept, timeoutMs, what) =>
      poll(async () => accept(await server.query(promql)), timeoutMs, `${name}: ${what}`),
    async targetsSummary() {
      const data = (await api(url, '/api/v1/targets', {})) as {
        activeTargets: Array<{
          scrapePool: string;
          scrapeUrl: string;
          health: string;
          lastError: string;
          lastScrape: string;
        }>;
      };
      return data.activeTargets
        .map(
          (t) =>
            `  ${t.scrapePool} ${t.scrapeUrl}: ${t.health} (last scrape ${t.lastScrape})${t.lastError ? ` — ${t.lastError}` : ''}`,
        )
        .join('\n');
    },
  };
  return server;
}
