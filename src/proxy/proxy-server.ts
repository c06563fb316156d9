import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { isAuthorized, parseAuthorization, type Credential } from '../auth/credentials.js';
import { grantKey, nameMatches, type ClientGrant } from '../auth/client-grants.js';
import { ConfigError } from '../errors.js';
import { createProxyMetrics } from './metrics/proxy-metrics.js';
import { failureFor } from '../wire/failures.js';
import { DEFAULT_HEARTBEAT, type HeartbeatOptions } from '../wire/heartbeat.js';
import { TUNNEL_PATH } from '../wire/protocol.js';
import { CLIENT_CLOSE_WAIT_MS } from './native/proxy-tunnel-session.js';
import {
  DEFAULT_PROXY_LIMITS,
  DEFAULT_PROXY_TIMEOUTS,
  type ProxyLimits,
  type ProxyTimeouts,
} from './proxy-limits.js';
import { formatHostPort, type HostPort } from '../util/host-port.js';
import { PollEndpoint, POLL_PATH, PUSH_PATH } from './pushprox/poll-endpoint.js';
import type { LongPollTimings } from './pushprox/long-poll-session.js';
import { AddressBlocks } from './address-blocks.js';
import { answerClientError, MAX_HEADER_BYTES } from './client-error-response.js';
import { HttpsConnectHandler } from './https-connect-handler.js';
import { sendFailure, sendJson, sendText } from './plain-response.js';
import { PipelineGuard } from './pipeline-guard.js';
import { ProxyEvents } from './proxy-events.js';
import { OwnNames } from './own-names.js';
import { hostNameOf, hostOf } from './request-host.js';
import { ScrapeHandler, type ScrapePolicy } from './scrape-handler.js';
import { DisconnectedTargets, targetGroups } from './service-discovery.js';
import { SessionRegistry } from './session-registry.js';
import { ClientActivity } from './status/client-activity.js';
import { serveStatusPage } from './status/serve-status-page.js';
import { statusReport } from './status/status-report.js';
import { StreamCounter } from './stream-counter.js';
import { sendUpgradeRequired, TunnelEndpoint } from './native/tunnel-endpoint.js';
import { writeRawResponse } from './raw-response.js';

export interface ProxyTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA (PEM) that signs client certificates; grants by certificate subject need it. */
  clientCa?: Buffer | undefined;
  /** Ask clients for a certificate (optional for them: tokens and scrapers still work). */
  requestClientCert?: boolean | undefined;
}

function serverTlsOptions(tls: ProxyTls): https.ServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.clientCa ? { ca: tls.clientCa } : {}),
    // Without a certificate, or with one the CA did not sign, the handshake still succeeds:
    // the grants decide (see authenticateClient), and scrapers and operators need none.
    ...(tls.requestClientCert ? { requestCert: true, rejectUnauthorized: false } : {}),
  };
}

export interface ProxyOptions {
  listen: HostPort;
  /** Serve TLS on the listener; without it the listener is plain HTTP. */
  tls?: ProxyTls | undefined;
  defaultScrapeTimeoutMs: number;
  maxScrapeTimeoutMs: number;
  /** Client tokens and the names each may register; undefined lets any client connect. */
  clientGrants?: readonly ClientGrant[] | undefined;
  /** Who may scrape; undefined lets anyone scrape. */
  scrapers?: readonly Credential[] | undefined;
  /** Who may read /clients and /metrics; undefined means the same as `scrapers`. */
  operators?: readonly Credential[] | undefined;
  limits?: Partial<ProxyLimits>;
  timeouts?: Partial<ProxyTimeouts>;
  heartbeat?: HeartbeatOptions;
  /**
   * Host names the proxy is reached by (besides its TLS certificate's, localhost and IP
   * addresses): no client may register them, and requests for them are never scrapes.
   */
  publicNames?: readonly string[] | undefined;
  /** PushProx long-poll clients: the re-poll grace (see LongPollTimings). */
  longPoll?: Partial<LongPollTimings> | undefined;
  /** How long a client must have served a name for /clients to list it after it left. */
  departedMinServedMs?: number | undefined;
}

/** The proxy's own pages and health checks (path-form requests it answers itself). */
const OPERATOR_PATHS = new Set([
  '/',
  '/clients',
  '/metrics',
  '/api/v1/clients',
  '/-/healthy',
  '/-/ready',
]);

export const DEFAULT_SCRAPE_TIMEOUT_MS = 15_000;
export const MAX_SCRAPE_TIMEOUT_MS = 5 * 60_000;

/**
 * The public side: one listener serving the scrape interface (absolute-form forward-proxy
 * requests and CONNECT), the tunnel endpoint (HTTP/1.1 Upgrade), and the operator interface.
 */
export class NatproxProxy {
  readonly events = new ProxyEvents();
  readonly registry = new SessionRegistry();
  readonly metrics: Registry;
  private readonly server: http.Server;
  private readonly streams = new StreamCounter();
  private readonly scrapes: ScrapeHandler;
  private readonly httpsConnects: HttpsConnectHandler;
  private readonly tunnels: TunnelEndpoint;
  private readonly longPolls: PollEndpoint;
  private options: ProxyOptions;
  private limits: ProxyLimits;
  private draining = false;
  private readonly activity: ClientActivity;
  private readonly disconnected: DisconnectedTargets;
  private readonly pipeline = new PipelineGuard(this.events);
  private readonly blocks = new AddressBlocks();
  private readonly startedAt = new Date();
  private readonly ownNames: OwnNames;

  constructor(options: ProxyOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_PROXY_LIMITS, ...options.limits };
    this.ownNames = new OwnNames(options.publicNames, options.tls?.cert);
    const isOwnName = (name: string): boolean => this.ownNames.has(name);
    const policy = (): ScrapePolicy => ({
      defaultScrapeTimeoutMs: this.options.defaultScrapeTimeoutMs,
      maxScrapeTimeoutMs: this.options.maxScrapeTimeoutMs,
      maxStreamsPerClient: this.limits.maxStreamsPerClient,
      maxStreamsPerScraper:
        this.options.scrapers === undefined
          ? undefined
          : (this.limits.maxStreamsPerScraper ??
            defaultPerScraper(this.limits.maxStreamsPerClient)),
      maxResponseBytes: this.limits.maxResponseBytes,
      maxRequestBytes: this.limits.maxRequestBytes,
    });
    const shared = {
      registry: this.registry,
      events: this.events,
      policy,
      streams: this.streams,
    };
    this.scrapes = new ScrapeHandler(shared);
    this.httpsConnects = new HttpsConnectHandler(shared);
    this.tunnels = new TunnelEndpoint({
      registry: this.registry,
      events: this.events,
      policy: () => ({
        clientGrants: this.options.clientGrants,
        limits: this.limits,
        isOwnName,
      }),
      heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
      controlBytesPerSecond: () => this.limits.maxTunnelControlBytesPerSecond,
    });
    this.longPolls = new PollEndpoint({
      registry: this.registry,
      events: this.events,
      policy: () => ({
        clientGrants: this.options.clientGrants,
        limits: this.limits,
        isOwnName,
      }),
      timings: options.longPoll,
    });
    this.metrics = createProxyMetrics(this.events, this.registry, () => this.streams.active);
    this.disconnected = new DisconnectedTargets(
      this.events,
      this.registry,
      undefined,
      options.departedMinServedMs,
    );
    this.activity = new ClientActivity(
      this.events,
      (name) => this.registry.lookup(name) !== undefined,
    );

    const timeouts = { ...DEFAULT_PROXY_TIMEOUTS, ...options.timeouts };
    const serverOptions: http.ServerOptions = {
      keepAliveTimeout: timeouts.idleMs,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.headersMs,
      // Node checks the two timeouts above only this often (default 30 s, which would let
      // a slow client hold a connection for up to twice headersMs).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, timeouts.headersMs / 2)),
      maxHeaderSize: MAX_HEADER_BYTES,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.route(req, res);
    this.server = options.tls
      ? https.createServer(
          {
            ...serverOptions,
            ...serverTlsOptions(options.tls),
            handshakeTimeout: timeouts.tlsHandshakeMs,
          },
          onRequest,
        )
      : http.createServer(serverOptions, onRequest);
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.tunnels.handleUpgrade(req, socket, head),
    );
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.authorizeScraper(req, socket)) this.httpsConnects.handle(req, socket, head);
    });
    this.server.on('clientError', answerClientError);
    // An idle keep-alive socket is covered by keepAliveTimeout; this catches the rest.
    this.server.on('connection', (socket: Socket) => {
      socket.on('error', () => {});
      if (this.blocks.blocked(socket.remoteAddress)) socket.destroy();
    });
    this.events.on('connectionCutOff', ({ address }) =>
      this.blocks.block(address, this.limits.floodBlockMs),
    );
  }

  /**
   * Shows `watch` the head of every request, tunnel upgrade and CONNECT before it is served
   * (natprox proxy uses it to notice a reverse proxy in front); returns how to stop.
   */
  watchRequests(watch: (req: IncomingMessage) => void): () => void {
    const events = ['request', 'upgrade', 'connect'] as const;
    for (const event of events) this.server.prependListener(event, watch);
    return () => {
      for (const event of events) this.server.off(event, watch);
    };
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
    this.events.emit('listening', {
      address: formatHostPort(address.address, address.port),
      tls: this.options.tls !== undefined,
    });
    return address;
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Streams being relayed right now (scrapes and CONNECT tunnels). */
  get activeScrapes(): number {
    return this.streams.active;
  }

  /**
   * Applies new settings without dropping connections: credentials, grants, limits,
   * timeouts and the TLS certificate. Clients whose token no longer grants their names are
   * disconnected. The listen address and whether TLS is on need a restart.
   */
  reload(next: ProxyOptions): void {
    const listen = this.options.listen;
    if (next.listen.host !== listen.host || next.listen.port !== listen.port) {
      throw new ConfigError(
        `listen changed from ${formatHostPort(listen.host, listen.port)} to ${formatHostPort(next.listen.host, next.listen.port)}; that needs a restart`,
      );
    }
    if ((next.tls === undefined) !== (this.options.tls === undefined)) {
      throw new ConfigError(
        `tls was ${this.options.tls ? 'on' : 'off'} and would be ${next.tls ? 'on' : 'off'}; that needs a restart`,
      );
    }
    const asks = (tls: ProxyTls | undefined): boolean => tls?.requestClientCert === true;
    if (asks(next.tls) !== asks(this.options.tls)) {
      throw new ConfigError(
        `client certificates were ${asks(this.options.tls) ? 'requested' : 'not requested'} and would be ${asks(next.tls) ? 'requested' : 'not requested'} (clients: with cert_subject or cert_sha256, tls.client_ca_file); that needs a restart`,
      );
    }
    if (next.tls && this.server instanceof https.Server) {
      // Throws on a bad key or certificate, before anything has changed.
      this.server.setSecureContext(serverTlsOptions(next.tls));
    }
    const caChanged = !sameBytes(this.options.tls?.clientCa, next.tls?.clientCa);
    this.options = next;
    this.limits = { ...DEFAULT_PROXY_LIMITS, ...next.limits };
    this.ownNames.configure(next.publicNames, next.tls?.cert);
    this.closeOwnNameHolders();
    const grants = next.clientGrants;
    if (grants === undefined) return;
    for (const session of this.registry.all()) {
      const grant = grants.find((g) => grantKey(g) === session.grantKey);
      const names = session.registration.names;
      if (!grant || !names.every((name) => nameMatches(grant.names, name))) {
        session.close('its token or certificate no longer grants its names after a config reload');
      } else if (caChanged && grant.certSubject !== undefined) {
        session.close(
          'the client CA changed in a config reload; it must present its certificate again',
        );
      }
    }
  }

  /**
   * Shuts down in steps: stop accepting connections and tunnels, let in-flight scrapes
   * finish within `graceMs`, then close every tunnel and connection.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    this.tunnels.stopAccepting();
    this.longPolls.stopAccepting();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.streams.active > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const sessions = this.registry.all();
    for (const session of sessions) session.close('proxy is shutting down');
    this.server.closeAllConnections();
    // The server closes when every tunnel socket has. A session closes its socket when the
    // client does not within CLIENT_CLOSE_WAIT_MS; one whose streams never finish (a client
    // that stopped answering mid-body) does not get that far.
    const timer = setTimeout(() => {
      for (const session of sessions) session.destroy?.('proxy is shutting down');
    }, CLIENT_CLOSE_WAIT_MS);
    await closed;
    clearTimeout(timer);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    if (!this.pipeline.admit(req, res, this.limits.maxPipelinedRequests)) return;
    const target = req.url ?? '';
    if (!target.startsWith('/')) {
      if (this.authorizeScraper(req, res)) this.scrapes.handle(req, res);
      return;
    }
    // Behind a reverse proxy (nginx, Caddy) a scrape arrives in origin form with the
    // target in Host: when Host names a connected client, it is a scrape of that client.
    // Never for the proxy's own names, nor for requests its own endpoints must answer.
    const host = hostNameOf(req.headers.host);
    const path = target.split('?')[0] ?? '';
    if (host !== undefined && !this.ownNames.has(host) && this.registry.lookup(host)) {
      const goesTo = this.originFormTarget(path, req);
      if (goesTo === 'refuse') {
        sendText(
          res,
          403,
          `natprox: this request names the client "${host}" in Host and carries both scraper credentials and the proxy's operator credentials (Authorization); natprox never forwards operator credentials to a client. Give the target other credentials, or reach the proxy itself by its own name`,
          { code: 'NATPROX_UNAUTHORIZED' },
        );
        return;
      }
      if (goesTo === 'client') {
        req.url = `http://${req.headers.host ?? host}${target}`;
        if (this.authorizeScraper(req, res)) this.scrapes.handle(req, res);
        return;
      }
    }
    switch (path) {
      case TUNNEL_PATH:
        sendUpgradeRequired(res);
        return;
      case POLL_PATH:
      case PUSH_PATH:
        this.longPolls.handle(path, req, res);
        return;
      case '/-/healthy':
        sendText(res, 200, 'natprox proxy is healthy');
        return;
      case '/-/ready':
        if (this.draining) sendText(res, 503, 'natprox proxy is shutting down');
        else sendText(res, 200, 'natprox proxy is ready');
        return;
      case '/clients':
      case '/metrics':
      case '/api/v1/clients':
      case '/':
        if (!this.authorized(this.operators(), req.headers.authorization)) {
          sendText(res, 401, 'natprox: operator credentials required', {
            code: 'NATPROX_UNAUTHORIZED',
            headers: { 'www-authenticate': 'Basic realm="natprox"' },
          });
          return;
        }
        if (host !== undefined && this.operators() !== undefined) this.learnOwnName(host);
        this.serveOperator(path, req, res);
        return;
      default:
        sendText(
          res,
          404,
          `natprox: no such page "${path}". Scrapes are forward-proxy requests (set proxy_url to this address); see /clients, /metrics, /-/healthy, /-/ready`,
        );
    }
  }

  /**
   * Where an origin-form request whose Host names a client goes. The tunnel and PushProx
   * paths are the proxy's (their Authorization carries a client's token); so are the
   * operator pages and health checks without scraper credentials (Proxy-Authorization, as
   * nginx passes a Prometheus scrape on) when scrapers: is set. An operator's Authorization
   * never reaches a client: with it, the request is the proxy's, or refused when it also
   * carries scraper credentials (a scrape whose target credentials are the operator's).
   */
  private originFormTarget(path: string, req: IncomingMessage): 'proxy' | 'client' | 'refuse' {
    if (path === TUNNEL_PATH || path === POLL_PATH || path === PUSH_PATH) return 'proxy';
    const scraping = req.headers['proxy-authorization'] !== undefined;
    const operators = this.operators();
    const authorization = req.headers.authorization;
    if (
      operators !== undefined &&
      authorization !== undefined &&
      isAuthorized(operators, parseAuthorization(authorization))
    ) {
      return scraping ? 'refuse' : 'proxy';
    }
    if (OPERATOR_PATHS.has(path) && this.options.scrapers !== undefined && !scraping) {
      return 'proxy';
    }
    return 'client';
  }

  /**
   * An operator reached the proxy by `host`: from now on no client may register it, and a
   * client holding it (registered before anyone asked for the proxy by that name) goes.
   */
  private learnOwnName(host: string): void {
    if (this.ownNames.learn(host)) this.closeOwnNameHolders();
  }

  private closeOwnNameHolders(): void {
    for (const session of this.registry.all()) {
      const own = session.registration.names.filter((name) => this.ownNames.has(name));
      if (own.length > 0) {
        session.close(
          `the proxy itself answers to ${own.join(', ')} (public_names, its TLS certificate, or a Host operators reach it by); no client may serve it`,
        );
      }
    }
  }

  /** Checks Proxy-Authorization; on failure answers 407 on `reply` and returns false. */
  private authorizeScraper(req: IncomingMessage, reply: ServerResponse | Duplex): boolean {
    if (this.authorized(this.options.scrapers, req.headers['proxy-authorization'])) return true;
    const reason = req.headers['proxy-authorization']
      ? 'wrong scraper credentials (Proxy-Authorization)'
      : 'proxy authentication required: send scraper credentials (proxy_url with user:password@, or Proxy-Authorization: Bearer)';
    const headers = { 'proxy-authenticate': 'Basic realm="natprox"' };
    const { status, proxy: outcome } = failureFor('NATPROX_UNAUTHORIZED');
    if (reply instanceof http.ServerResponse) {
      sendFailure(reply, 'NATPROX_UNAUTHORIZED', reason, headers);
    } else {
      writeRawResponse(reply, status, `natprox: ${reason}`, headers);
    }
    this.events.emit('scrapeFinished', {
      name: hostOf(req.url ?? ''),
      port: 0,
      path: '',
      outcome,
      status,
      durationMs: 0,
      bytes: 0,
      reason: 'missing or wrong scraper credentials',
    });
    return false;
  }

  private serveOperator(path: string, req: IncomingMessage, res: ServerResponse): void {
    if (path === '/clients') {
      sendJson(res, 200, targetGroups(this.registry, this.disconnected));
    } else if (path === '/metrics') {
      this.metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          res.end(text);
        },
        (err: unknown) => sendText(res, 500, `natprox: metrics failed: ${String(err)}`),
      );
    } else if (path === '/api/v1/clients') {
      sendJson(res, 200, statusReport(this.registry, this.activity, this.startedAt));
    } else {
      serveStatusPage(req, res, statusReport(this.registry, this.activity, this.startedAt));
    }
  }

  private operators(): readonly Credential[] | undefined {
    return this.options.operators ?? this.options.scrapers;
  }

  private authorized(allowed: readonly Credential[] | undefined, header: string | undefined) {
    return allowed === undefined || isAuthorized(allowed, parseAuthorization(header));
  }
}

/** 3/4 of a client's streams: one scraper credential leaves room for the others. */
export function defaultPerScraper(maxStreamsPerClient: number): number {
  return Math.max(1, Math.floor((maxStreamsPerClient * 3) / 4));
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
