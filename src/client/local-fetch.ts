import http, {
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import https from 'node:https';
import type { NatproxErrorCode } from '../errors.js';
import { formatHostPort } from '../util/host-port.js';
import type { Allowlist } from './allowlist.js';
import type { ServeOutcome } from './client-events.js';
import { SCHEME_PARAM, takeSchemeParam } from './scheme-param.js';

/** One scrape to run against a local target, whatever transport brought it. */
export interface LocalScrape {
  name: string;
  port: number;
  method: string;
  /**
   * Path and query to fetch; the allowlist checks the path. A `_scheme=https` parameter
   * (PushProx's convention) is taken off and makes the fetch https.
   */
  pathAndQuery: string;
  /** End-to-end headers to send on; Host becomes `authority`. */
  headers: OutgoingHttpHeaders;
  /** NAME:PORT as the scraper addressed it, sent as Host. */
  authority: string;
  deadlineMs: number;
}

/** How a fetch ended before a response; the transport answers in its own way. */
export interface LocalFetchHandlers {
  /** Refused (name, allowlist) or failed (target down, deadline): natprox's own answer. */
  refused(status: number, code: NatproxErrorCode, outcome: ServeOutcome, reason: string): void;
  /** The requester went away before the target answered. */
  cancelled(): void;
  /** The target answered; the body streams and the deadline still runs. Call `done()` after. */
  response(response: IncomingMessage): void;
}

/** One fetch in flight: its deadline keeps running until `done()`, `stop()` aborts it. */
export interface LocalFetch {
  /** Why the fetch was stopped, if it was. */
  readonly stopped: 'deadline' | 'cancelled' | undefined;
  /** Aborts the local request (and its body); idempotent. */
  stop(why: 'deadline' | 'cancelled'): void;
  /** The answer is relayed (or given up): clears the deadline. */
  done(): void;
}

const AGENT_OPTIONS = { keepAlive: true, maxSockets: 256, maxFreeSockets: 256 };

/**
 * The transport-independent part of serving a scrape: checks the name and the allowlist,
 * fetches the local target with the scrape's deadline, and reports how it went. Native
 * tunnel streams and PushProx polls both use it, so both enforce the same allowlist.
 */
export class LocalTargets {
  // As many idle connections may be kept as may be open: with fewer, a burst of more
  // concurrent scrapes than that closed a connection after nearly every fetch and opened a
  // new one for the next (measured: 6,000 new connections in 23,000 scrapes at 64 in
  // flight). Idle ones still close when the target's keep-alive timeout passes.
  private readonly agent = new http.Agent(AGENT_OPTIONS);
  /** For `_scheme=https`: certificates are verified (system CAs, NODE_EXTRA_CA_CERTS) for NAME. */
  private readonly httpsAgent = new https.Agent(AGENT_OPTIONS);
  private readonly inFlight = new Set<LocalFetch>();

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly allowlist: Allowlist,
  ) {}

  /** Aborts fetches still running (the grace period is over) and closes local connections. */
  close(): void {
    for (const fetch of this.inFlight) fetch.stop('cancelled');
    this.agent.destroy();
    this.httpsAgent.destroy();
  }

  /** Starts the fetch, or refuses it through `handlers` (then returns undefined). */
  fetch(scrape: LocalScrape, handlers: LocalFetchHandlers): LocalFetch | undefined {
    const { scheme, pathAndQuery, invalid } = takeSchemeParam(scrape.pathAndQuery);
    const path = pathAndQuery.split('?')[0] ?? '/';
    if (invalid !== undefined) {
      handlers.refused(
        400,
        'NATPROX_BAD_REQUEST',
        'forbidden',
        `${SCHEME_PARAM} must be http or https, got "${invalid}"`,
      );
      return undefined;
    }
    if (!this.names.has(scrape.name)) {
      handlers.refused(
        421,
        'NATPROX_BAD_REQUEST',
        'misdirected',
        `this client does not serve "${scrape.name}"`,
      );
      return undefined;
    }
    const decision = this.allowlist.check(scrape.port, path);
    if (!decision.allowed) {
      handlers.refused(403, 'NATPROX_TARGET_FORBIDDEN', 'forbidden', decision.reason);
      return undefined;
    }
    const { target } = decision;
    const secure = scheme === 'https';
    // Object.assign, not a spread followed by more keys: V8 takes a slow path for those.
    const headers: OutgoingHttpHeaders = Object.assign({}, scrape.headers);
    headers.host = scrape.authority;
    const request = (secure ? https : http).request({
      host: target.host,
      port: target.port,
      method: scrape.method,
      path: pathAndQuery,
      headers,
      agent: secure ? this.httpsAgent : this.agent,
    });
    const fetch = new ActiveFetch(request, this.inFlight, scrape.deadlineMs);
    request.once('error', (err: Error) => {
      fetch.done();
      const where = `${secure ? 'https://' : ''}${formatHostPort(target.host, target.port)}${path}`;
      if (fetch.stopped === 'cancelled') {
        handlers.cancelled();
        return;
      }
      if (fetch.stopped === 'deadline') {
        handlers.refused(
          504,
          'NATPROX_SCRAPE_TIMEOUT',
          'timeout',
          `${where} did not answer within ${scrape.deadlineMs} ms`,
        );
        return;
      }
      const cause = (err as NodeJS.ErrnoException).code ?? err.message;
      handlers.refused(
        502,
        'NATPROX_TARGET_FAILED',
        'target_error',
        `fetching ${where} failed: ${cause}`,
      );
    });
    request.once('response', (response: IncomingMessage) => handlers.response(response));
    request.end();
    return fetch;
  }
}

/**
 * A fetch in flight. A class, not an object literal with a getter: V8 builds such a literal
 * on a slow path (about 0.5 µs per scrape, measured).
 */
class ActiveFetch implements LocalFetch {
  stopped: 'deadline' | 'cancelled' | undefined = undefined;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly request: ClientRequest,
    private readonly inFlight: Set<LocalFetch>,
    deadlineMs: number,
  ) {
    this.deadline = setTimeout(() => this.stop('deadline'), deadlineMs);
    inFlight.add(this);
  }

  stop(why: 'deadline' | 'cancelled'): void {
    if (this.stopped) return;
    this.stopped = why;
    this.request.destroy();
  }

  done(): void {
    clearTimeout(this.deadline);
    this.inFlight.delete(this);
  }
}
