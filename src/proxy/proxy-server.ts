import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { isAuthorized, parseAuthorization, type Credential } from '../auth/credentials.js';
import type { ClientGrant } from '../auth/client-tokens.js';
import { createProxyMetrics } from '../observability/proxy-metrics.js';
import { DEFAULT_HEARTBEAT, type HeartbeatOptions } from '../tunnel/heartbeat.js';
import { formatHostPort, type HostPort } from '../util/host-port.js';
import { sendJson, sendText } from './plain-response.js';
import { ProxyEvents } from './proxy-events.js';
import { ScrapeHandler } from './scrape-handler.js';
import { targetGroups } from './service-discovery.js';
import { SessionRegistry } from './session-registry.js';
import { TunnelEndpoint, writeRawResponse } from './tunnel-endpoint.js';

export interface ProxyLimits {
  maxClients: number;
  maxStreamsPerClient: number;
  maxNamesPerClient: number;
}

export const DEFAULT_PROXY_LIMITS: ProxyLimits = {
  maxClients: 10_000,
  maxStreamsPerClient: 256,
  maxNamesPerClient: 16,
};

export interface ProxyOptions {
  listen: HostPort;
  defaultScrapeTimeoutMs: number;
  maxScrapeTimeoutMs: number;
  /** Client tokens and the names each may register; undefined lets any client connect. */
  clientGrants?: readonly ClientGrant[] | undefined;
  /** Who may scrape; undefined lets anyone scrape. */
  scrapers?: readonly Credential[] | undefined;
  /** Who may read /clients and /metrics; undefined means the same as `scrapers`. */
  operators?: readonly Credential[] | undefined;
  limits?: Partial<ProxyLimits>;
  heartbeat?: HeartbeatOptions;
}

export const DEFAULT_SCRAPE_TIMEOUT_MS = 15_000;
export const MAX_SCRAPE_TIMEOUT_MS = 5 * 60_000;

/**
 * The public side: one listener serving the scrape interface (absolute-form forward-proxy
 * requests), the tunnel endpoint (HTTP/1.1 Upgrade), and the operator interface.
 */
export class NatproxProxy {
  readonly events = new ProxyEvents();
  readonly registry = new SessionRegistry();
  readonly metrics: Registry;
  private readonly server: http.Server;
  private readonly scrapes: ScrapeHandler;
  private readonly tunnels: TunnelEndpoint;
  private draining = false;

  constructor(private readonly options: ProxyOptions) {
    const limits = { ...DEFAULT_PROXY_LIMITS, ...options.limits };
    this.scrapes = new ScrapeHandler({
      registry: this.registry,
      events: this.events,
      defaultScrapeTimeoutMs: options.defaultScrapeTimeoutMs,
      maxScrapeTimeoutMs: options.maxScrapeTimeoutMs,
      maxStreamsPerClient: limits.maxStreamsPerClient,
    });
    this.tunnels = new TunnelEndpoint({
      registry: this.registry,
      events: this.events,
      clientGrants: options.clientGrants,
      maxClients: limits.maxClients,
      maxNamesPerClient: limits.maxNamesPerClient,
      heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
    });
    this.metrics = createProxyMetrics(this.events, this.registry, () => this.scrapes.activeScrapes);
    this.server = http.createServer(
      { keepAliveTimeout: 65_000, headersTimeout: 30_000, maxHeaderSize: 32 * 1024 },
      (req, res) => this.route(req, res),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.tunnels.handleUpgrade(req, socket, head),
    );
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) =>
      writeRawResponse(
        socket,
        405,
        'natprox: CONNECT is not supported; scrape http:// targets through natprox (the client can reach https targets locally)',
      ),
    );
    this.server.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) writeRawResponse(socket, 400, 'natprox: malformed HTTP request');
      else socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    const { host, port } = this.options.listen;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.address();
    this.events.emit('listening', { address: formatHostPort(address.address, address.port) });
    return address;
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Scrapes being relayed right now. */
  get activeScrapes(): number {
    return this.scrapes.activeScrapes;
  }

  /**
   * Shuts down in steps: stop accepting connections and tunnels, let in-flight scrapes
   * finish within `graceMs`, then close every tunnel and connection.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    this.tunnels.stopAccepting();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.scrapes.activeScrapes > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const session of this.registry.all()) session.close('proxy is shutting down');
    this.server.closeAllConnections();
    await closed;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '';
    if (!target.startsWith('/')) {
      if (!this.authorized(this.options.scrapers, req.headers['proxy-authorization'])) {
        sendText(res, 407, 'natprox: proxy authentication required (scraper credentials)', {
          code: 'NATPROX_UNAUTHORIZED',
          headers: { 'proxy-authenticate': 'Basic realm="natprox"' },
        });
        this.events.emit('scrapeFinished', {
          name: hostOf(target),
          port: 0,
          path: '',
          outcome: 'unauthorized',
          status: 407,
          durationMs: 0,
          bytes: 0,
          reason: 'missing or wrong scraper credentials',
        });
        return;
      }
      this.scrapes.handle(req, res);
      return;
    }
    const path = target.split('?')[0];
    switch (path) {
      case '/-/healthy':
        sendText(res, 200, 'natprox proxy is healthy');
        return;
      case '/-/ready':
        if (this.draining) sendText(res, 503, 'natprox proxy is shutting down');
        else sendText(res, 200, 'natprox proxy is ready');
        return;
      case '/clients':
      case '/metrics':
      case '/':
        if (!this.authorized(this.operators(), req.headers.authorization)) {
          sendText(res, 401, 'natprox: operator credentials required', {
            code: 'NATPROX_UNAUTHORIZED',
            headers: { 'www-authenticate': 'Basic realm="natprox"' },
          });
          return;
        }
        this.serveOperator(path, res);
        return;
      default:
        sendText(
          res,
          404,
          `natprox: no such page "${path}". Scrapes are forward-proxy requests (set proxy_url to this address); see /clients, /metrics, /-/healthy, /-/ready`,
        );
    }
  }

  private serveOperator(path: string, res: ServerResponse): void {
    if (path === '/clients') {
      sendJson(res, 200, targetGroups(this.registry));
    } else if (path === '/metrics') {
      this.metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          res.end(text);
        },
        (err: unknown) => sendText(res, 500, `natprox: metrics failed: ${String(err)}`),
      );
    } else {
      const lines = this.registry
        .servedNames()
        .map(
          ({ name, session }) =>
            `${name}\t${session.transport}\t${session.remoteAddress}\tsince ${session.connectedAt.toISOString()}`,
        );
      sendText(
        res,
        200,
        `natprox proxy: ${this.registry.size} clients connected\n\n${lines.join('\n')}`,
      );
    }
  }

  private operators(): readonly Credential[] | undefined {
    return this.options.operators ?? this.options.scrapers;
  }

  private authorized(allowed: readonly Credential[] | undefined, header: string | undefined) {
    return allowed === undefined || isAuthorized(allowed, parseAuthorization(header));
  }
}

function hostOf(target: string): string {
  try {
    return new URL(target).hostname;
  } catch {
    return '';
  }
}
