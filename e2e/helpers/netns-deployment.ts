/**
 * natprox across a real link: the home namespace runs node_exporter, a Prometheus scraping it
 * (federated through the tunnel), a target with a large exposition and the natprox client; the VPS namespace runs the natprox proxy and a scraper
 * the test drives. Optionally a slow-line relay in the VPS namespace sits between them.
 * Processes are natprox's build (bin/natprox.js, dist/), not its sources.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDebianBinaries } from './debian-binaries.js';
import { HOME_ADDRESS, NetnsPair, VPS_ADDRESS } from './netns.js';
import { poll, ProcessGroup, type RunningProcess } from './processes.js';
import type { AgentRequest, AgentResult } from './scrape-agent.js';

export const PROXY_PORT = 8080;
export const RELAY_PORT = 8081;
export const NODE_EXPORTER_PORT = 9100;
export const BIG_PORT = 9200;
export const HOME_PROMETHEUS_PORT = 9090;
/** What the VPS Prometheus federates from the home one. */
export const FEDERATE_PATH = `/federate?match[]=${encodeURIComponent('{job="node"}')}`;
export const CLIENT_NAME = 'home';
/** What the proxy knows of each tunnel (GET /api/v1/clients). */
export interface ClientEntry {
  id: string;
  names: string[];
  remoteAddress: string;
  connectedAt: string;
}

export interface SlowLine {
  rttMs: number;
  /** Home → VPS bytes per second. */
  upBytesPerSecond: number;
  downBytesPerSecond: number;
  queueBytes: number;
}

export interface DeploymentOptions {
  /** Put the client behind a slow line (a relay in the VPS namespace). */
  slowLine?: SlowLine;
  bigBytes?: number;
  proxyArgs?: string[];
  clientArgs?: string[];
}

/** A scraper in the VPS namespace: one JSON line per request and per outcome. */
export class Scraper {
  private nextId = 1;
  private readonly waiting = new Map<number, (result: AgentResult) => void>();
  private partial = '';

  constructor(readonly process: RunningProcess) {
    process.child.stdout?.on('data', (chunk: Buffer) => {
      const text = this.partial + chunk.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const result = JSON.parse(line) as AgentResult;
        this.waiting.get(result.id)?.(result);
        this.waiting.delete(result.id);
      }
    });
  }

  request(request: Omit<AgentRequest, 'id'>): Promise<AgentResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.process.running) {
        reject(new Error('the scrape agent is not running'));
        return;
      }
      this.waiting.set(id, resolve);
      this.process.child.stdin?.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** A scrape of the home's `port` through the proxy, as Prometheus sends it. */
  scrape(port: number, deadlineMs: number, path = '/metrics'): Promise<AgentResult> {
    return this.request({
      url: `http://${CLIENT_NAME}:${port}${path}`,
      proxy: `127.0.0.1:${PROXY_PORT}`,
      deadlineMs,
    });
  }

  /** The tunnels the proxy lists now. */
  async clients(): Promise<ClientEntry[]> {
    const result = await this.request({
      url: `http://127.0.0.1:${PROXY_PORT}/api/v1/clients`,
      deadlineMs: 2000,
      keepBody: true,
    });
    if (result.status !== 200 || result.body === undefined) {
      throw new Error(`/api/v1/clients answered ${result.status} ${result.error ?? ''}`);
    }
    return (JSON.parse(result.body) as { clients: ClientEntry[] }).clients;
  }
}

export interface LoadResult extends AgentResult {
  /** When it was sent, ms since the epoch. */
  sentAt: number;
  deadlineMs: number;
}

/** Scrapes at a steady rate until stopped; keeps every outcome. */
export class Load {
  readonly results: LoadResult[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly scraper: Scraper,
    private readonly perSecond: number,
    private readonly deadlineMs: number,
    private readonly port = NODE_EXPORTER_PORT,
    private readonly path = '/metrics',
  ) {}

  start(): void {
    const everyMs = 1000 / this.perSecond;
    let next = Date.now();
    const fire = (): void => {
      const sentAt = Date.now();
      const done = this.scraper.scrape(this.port, this.deadlineMs, this.path).then(
        (result) => {
          this.results.push({ ...result, sentAt, deadlineMs: this.deadlineMs });
        },
        () => {},
      );
      this.pending.add(done);
      void done.then(() => this.pending.delete(done));
      next += everyMs;
      this.timer = setTimeout(fire, Math.max(0, next - Date.now()));
    };
    fire();
  }

  /** Stops sending; resolves once every scrape sent has ended. */
  async stop(): Promise<LoadResult[]> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([...this.pending]);
    return this.results;
  }
}

export class Deployment {
  readonly net = new NetnsPair();
  readonly group = new ProcessGroup();
  proxy!: RunningProcess;
  client!: RunningProcess;
  scraper!: Scraper;
  private clientArgs: string[] = [];
  private readonly cleanups: Array<() => void> = [];
  private proxyArgs: string[] = [];

  /** Starts every process; resolves once the tunnel is up. */
  async start(options: DeploymentOptions = {}): Promise<void> {
    const bin = requireDebianBinaries(['prometheus', 'prometheus-node-exporter']);
    const { home, vps } = this.net;
    this.net.start(this.group, home, 'node_exporter', bin['prometheus-node-exporter'], [
      `--web.listen-address=127.0.0.1:${NODE_EXPORTER_PORT}`,
      '--no-collector.systemd',
    ]);
    const big = this.net.startScript(this.group, home, 'big target', 'e2e/helpers/metrics-server.ts', [
      '--listen', `127.0.0.1:${BIG_PORT}`, '--big-bytes', String(options.bigBytes ?? 5 * 1024 * 1024),
    ]); // prettier-ignore
    // The home Prometheus scrapes node_exporter every second; the VPS federates it.
    const promDir = mkdtempSync(join(tmpdir(), 'natprox-netns-prometheus-'));
    this.cleanups.push(() => rmSync(promDir, { recursive: true, force: true }));
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, scrape_timeout: 1s }\nscrape_configs:\n  - job_name: node\n    static_configs: [{ targets: ['127.0.0.1:${NODE_EXPORTER_PORT}'] }]\n`,
    );
    const homePrometheus = this.net.start(this.group, home, 'home Prometheus', bin.prometheus, [
      `--config.file=${join(promDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${HOME_PROMETHEUS_PORT}`,
    ]);
    this.proxyArgs = [
      'proxy',
      '--listen',
      `0.0.0.0:${PROXY_PORT}`,
      '--insecure',
      '--shutdown-grace',
      '1s',
      ...(options.proxyArgs ?? []),
    ];
    this.startProxy();
    await this.proxy.waitForLine(/proxy listening/, 15_000);
    let dialPort = PROXY_PORT;
    if (options.slowLine) {
      const line = options.slowLine;
      const relay = this.net.startScript(this.group, vps, 'slow line', 'e2e/helpers/link-relay.ts', [
        '--listen', `${VPS_ADDRESS}:${RELAY_PORT}`, '--target', `127.0.0.1:${PROXY_PORT}`,
        '--up-delay-ms', String(line.rttMs / 2), '--down-delay-ms', String(line.rttMs / 2),
        '--up-bytes-per-second', String(line.upBytesPerSecond),
        '--down-bytes-per-second', String(line.downBytesPerSecond),
        '--queue-bytes', String(line.queueBytes),
      ]); // prettier-ignore
      await relay.waitForLine(/relay listening/, 15_000);
      dialPort = RELAY_PORT;
    }
    this.clientArgs = [
      'client',
      '--proxy-url',
      `http://${VPS_ADDRESS}:${dialPort}`,
      '--name',
      CLIENT_NAME,
      '--allow',
      String(NODE_EXPORTER_PORT),
      '--allow',
      String(BIG_PORT),
      '--allow',
      `${HOME_PROMETHEUS_PORT}/federate`,
      '--shutdown-grace',
      '1s',
      ...(options.clientArgs ?? []),
    ];
    this.client = this.net.startNatprox(this.group, home, 'natprox client', this.clientArgs);
    const agent = this.net.startScript(this.group, vps, 'scraper', 'e2e/helpers/scrape-agent.ts', [], { stdin: 'pipe' }); // prettier-ignore
    await agent.waitForLine(/agent ready/, 15_000);
    this.scraper = new Scraper(agent);
    await big.waitForLine(/metrics server listening/, 15_000);
    await homePrometheus.waitForLine(/Server is ready to receive web requests/, 30_000);
    await this.client.waitForLine(/tunnel connected/, 15_000);
    await this.waitForTunnel(10_000);
  }

  startProxy(): void {
    this.proxy = this.net.startNatprox(this.group, this.net.vps, 'natprox proxy', this.proxyArgs);
  }

  /** Resolves with the tunnels listed for CLIENT_NAME once there is one. */
  async waitForTunnel(timeoutMs: number, everyMs = 100): Promise<ClientEntry[]> {
    return poll(
      async () => {
        const listed = (await this.scraper.clients()).filter((c) => c.names.includes(CLIENT_NAME));
        return listed.length > 0 ? listed : undefined;
      },
      timeoutMs,
      'the proxy to list the home tunnel',
      everyMs,
    );
  }

  /** Resolves once the proxy lists no tunnel for CLIENT_NAME. */
  async waitForNoTunnel(timeoutMs: number, everyMs = 100): Promise<void> {
    await poll(
      async () => {
        const listed = (await this.scraper.clients()).filter((c) => c.names.includes(CLIENT_NAME));
        return listed.length === 0 ? true : undefined;
      },
      timeoutMs,
      'the proxy to drop the home tunnel',
      everyMs,
    );
  }

  /** Logs of every process, for a failed step. */
  report(): string {
    return this.group.report(40);
  }

  async stop(): Promise<void> {
    this.scraper?.process.child.stdin?.end();
    await this.net.destroy(this.group);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

export { HOME_ADDRESS, VPS_ADDRESS };
