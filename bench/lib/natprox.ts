/** Real natprox proxy and client processes for the scenarios, and the operator API they serve. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnNatprox, sleep, type Spawned } from './children.js';

export interface ProxyProcess extends Spawned {
  port: number;
  url: string;
}

export interface ProxyStart {
  /** HOST:PORT to listen on (default an ephemeral loopback port). */
  listen?: string;
  /** Written as the --config file (JSON is YAML). */
  config?: Record<string, unknown>;
  heartbeatInterval?: string;
  /** Directory for `node --cpu-prof` output; profiling is off without it. */
  cpuProfDir?: string | undefined;
}

let configDir: string | undefined;

function configFile(config: Record<string, unknown>): string {
  configDir ??= mkdtempSync(join(tmpdir(), 'natprox-bench-'));
  const file = join(configDir, `proxy-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export function removeConfigFiles(): void {
  if (configDir) rmSync(configDir, { recursive: true, force: true });
  configDir = undefined;
}

let profiles = 0;

/** `node --cpu-prof` flags; files are named ROLE-N.cpuprofile in start order. */
function profArgs(dir: string | undefined, role: string): string[] {
  if (!dir) return [];
  profiles += 1;
  const name = `${role}-${String(profiles).padStart(3, '0')}.cpuprofile`;
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name];
}

export async function startProxy(options: ProxyStart = {}): Promise<ProxyProcess> {
  const args = ['proxy', '--listen', options.listen ?? '127.0.0.1:0', '--shutdown-grace', '500ms'];
  if (options.config) args.push('--config', configFile(options.config));
  if (options.heartbeatInterval) args.push('--heartbeat-interval', options.heartbeatInterval);
  const spawned = spawnNatprox(args, profArgs(options.cpuProfDir, 'proxy'));
  const match = await spawned.waitFor(/"address":"127\.0\.0\.1:(\d+)"/, 15_000);
  const port = Number(match[1]);
  return { ...spawned, port, url: `http://127.0.0.1:${port}` };
}

export interface ClientStart {
  /** One proxy, or several (--proxy-url repeated: one tunnel to each). */
  proxyUrl: string | string[];
  names: string[];
  allowPorts: number[];
  heartbeatInterval?: string;
  cpuProfDir?: string | undefined;
  /** The script node runs (default bin/natprox.js; SINGLE_FILE for the bundle). */
  entry?: string;
}

export function startClient(options: ClientStart): Spawned {
  const args = ['client', '--shutdown-grace', '500ms'];
  for (const url of [options.proxyUrl].flat()) args.push('--proxy-url', url);
  for (const name of options.names) args.push('--name', name);
  for (const port of options.allowPorts) args.push('--allow', String(port));
  if (options.heartbeatInterval) args.push('--heartbeat-interval', options.heartbeatInterval);
  return spawnNatprox(args, profArgs(options.cpuProfDir, 'client'), options.entry);
}

export function getJson<T>(
  port: number,
  path: string,
  timeoutMs = 10_000,
  headers: Record<string, string> = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('error', reject);
        res.once('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)));
    req.once('error', reject);
  });
}

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Names currently listed by the proxy's /clients (http_sd). */
export async function listedNames(
  proxyPort: number,
  headers: Record<string, string> = {},
): Promise<Set<string>> {
  const groups = await getJson<TargetGroup[]>(proxyPort, '/clients', 10_000, headers);
  return new Set(groups.map((group) => group.labels.__meta_natprox_name ?? ''));
}

/** Polls /clients until every name in `names` is listed. */
export async function waitListed(
  proxyPort: number,
  names: readonly string[],
  timeoutMs: number,
  /** Operator credentials (Authorization), for a proxy that has scrapers: or operators:. */
  headers: Record<string, string> = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listed = await listedNames(proxyPort, headers);
    const missing = names.filter((name) => !listed.has(name));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${missing.length} names not in /clients after ${timeoutMs} ms, e.g. ${missing.slice(0, 3).join(', ')}`,
      );
    }
    await sleep(50);
  }
}
