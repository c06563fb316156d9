import http, { type OutgoingHttpHeaders, type RequestOptions } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { realClock, type Clock } from '../util/clock.js';
import { formatHostPort } from '../util/host-port.js';
import type { Allowlist } from './allowlist.js';
import type { LocalFetch, LocalFetchHandlers, LocalScrape } from './local-scrape.js';
import { TargetExchange } from './target-exchange.js';
import { TargetPool } from './target-pool.js';
import { SCHEME_PARAM, takeSchemeParam } from './scheme-param.js';

/**
 * One connection pool per target origin for all clients in the process (a program that runs
 * many clients, as the bench's fleet does, would otherwise keep a pool per client, each with
 * its own idle connection and timers). Closed when the last client closes.
 */
const sharedPools = {
  http: undefined as TargetPool | undefined,
  https: undefined as TargetPool | undefined,
  users: 0,
  acquire(): { http: TargetPool; https: TargetPool } {
    this.users += 1;
    this.http ??= new TargetPool('http:', 80);
    this.https ??= new TargetPool('https:', 443);
    return { http: this.http, https: this.https };
  },
  release(): void {
    this.users -= 1;
    if (this.users > 0) return;
    this.http?.destroy();
    this.https?.destroy();
    this.http = undefined;
    this.https = undefined;
  },
};

/**
 * The transport-independent part of serving a scrape: checks the name and the allowlist,
 * fetches the local target with the scrape's deadline, and reports how it went. Native
 * tunnel streams and PushProx polls both use it, so both enforce the same allowlist.
 *
 * Fetches go through node:http rather than undici: loading undici alone cost the client
 * 17 MiB of its idle memory (issue 19), and node:http is loaded anyway. Its connections come
 * from TargetPool, not Node's Agent, which cost 10-15 µs more CPU per fetch. https is
 * verified (system CAs, NODE_EXTRA_CA_CERTS) for the scraped NAME.
 */
export class LocalTargets {
  private readonly pools = sharedPools.acquire();
  private readonly inFlight = new Set<TargetExchange>();
  private closed = false;

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly allowlist: Allowlist,
    /** What fetch deadlines run on; tests give a fake one. */
    private readonly clock: Clock = realClock,
  ) {}

  /**
   * Aborts fetches still running (the grace period is over); the last client of the
   * process to close also closes the local connections.
   */
  close(): void {
    for (const fetch of this.inFlight) fetch.stop('cancelled');
    if (!this.closed) sharedPools.release();
    this.closed = true;
  }

  /** Starts the fetch, or refuses it through `handlers` (then returns undefined). */
  fetch(scrape: LocalScrape, handlers: LocalFetchHandlers): LocalFetch | undefined {
    const { scheme, pathAndQuery, invalid } = takeSchemeParam(scrape.pathAndQuery);
    const path = pathAndQuery.split('?')[0] ?? '/';
    if (invalid !== undefined) {
      handlers.refused(
        'NATPROX_BAD_REQUEST',
        `${SCHEME_PARAM} must be http or https, got "${invalid}"`,
      );
      return undefined;
    }
    if (!this.names.has(scrape.name)) {
      handlers.refused('NATPROX_MISDIRECTED', `this client does not serve "${scrape.name}"`);
      return undefined;
    }
    // Before anything reaches the target: a proxy may send any method (a compromised one,
    // or a PushProx proxy, which forwards whatever it is sent).
    if (scrape.body !== undefined && (scrape.method === 'GET' || scrape.method === 'HEAD')) {
      handlers.refused(
        'NATPROX_BAD_REQUEST',
        `a ${scrape.method} request carries no body, but this one has one`,
      );
      return undefined;
    }
    const decision = this.allowlist.check(scrape.port, path, scrape.method);
    if (!decision.allowed) {
      const methods = decision.allowedMethods;
      if (methods) {
        handlers.refused('NATPROX_METHOD_NOT_ALLOWED', decision.reason, methods.join(', '));
      } else {
        handlers.refused('NATPROX_TARGET_FORBIDDEN', decision.reason);
      }
      return undefined;
    }
    const { target } = decision;
    const secure = scheme === 'https';
    const hostPort = formatHostPort(target.host, target.port);
    const exchange = new TargetExchange(
      handlers,
      this.inFlight,
      scrape.deadlineMs,
      `${secure ? 'https://' : ''}${hostPort}${path}`,
      this.clock,
    );
    const options: RequestOptions = {
      // node:http takes any object with an agent's interface.
      agent: (secure ? this.pools.https : this.pools.http) as unknown as http.Agent,
      host: target.host,
      port: target.port,
      method: scrape.method,
      path: pathAndQuery,
      headers: requestHead(scrape) as unknown as OutgoingHttpHeaders,
    };
    // The certificate must be the scraped NAME's (Host names it, but Node takes the name
    // to verify from Host only for headers given as an object); an IP address is not a
    // server name, and the target's own address is verified instead.
    if (secure) (options as https.RequestOptions).servername = serverName(scrape.name);
    exchange.send(secure ? https.request : http.request, options, scrape.body);
    return exchange;
  }
}

/**
 * The request's header lines as a flat list (name, value, …): Node writes them in one pass
 * instead of storing each with setHeader first. Host is the scrape's authority; Expect is
 * for the hop that got it (a proxy answers it). A body in memory names its own length, a
 * streamed one keeps the length it was sent with, or goes chunked (whatever the method).
 */
function requestHead(scrape: LocalScrape): Array<string | string[]> {
  const head: Array<string | string[]> = [];
  const { headers, body } = scrape;
  const inMemory = Buffer.isBuffer(body);
  let sized = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name === 'host' || name === 'expect') continue;
    if (name === 'transfer-encoding') continue; // the body's framing is this hop's own
    if (name === 'content-length') {
      if (inMemory) continue;
      sized = true;
    }
    head.push(name, typeof value === 'number' ? String(value) : value);
  }
  head.push('host', scrape.authority);
  if (inMemory) head.push('content-length', String(body.length));
  else if (body !== undefined && !sized) head.push('transfer-encoding', 'chunked');
  return head;
}

/** The name TLS verifies: the scraped NAME, unless it is an IP address. */
function serverName(name: string): string {
  return isIP(name) === 0 ? name : '';
}
