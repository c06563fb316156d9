import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientGrant } from '../../auth/client-grants.js';
import { sendText } from '../plain-response.js';
import type { ProxyEvents } from '../proxy-events.js';
import type { SessionRegistry } from '../session-registry.js';
import { admitToEntry, type EntryAdmission } from '../entry-limits.js';
import { ownNameRefusal } from '../own-names.js';
import { readLimited } from '../../util/read-limited.js';
import type { ProxyLimits } from '../proxy-limits.js';
import { remoteOf } from '../raw-response.js';
import { validateName } from '../../wire/protocol.js';
import { authorizeLongPoll } from './long-poll-auth.js';
import { presentedCertificate, type PresentedCertificate } from '../../auth/client-certificate.js';
import {
  DEFAULT_LONG_POLL_TIMINGS,
  LongPollSession,
  type LongPollTimings,
} from './long-poll-session.js';
import { PendingScrapes } from './pending-scrapes.js';
import { readPushedResponse, type PushedResponse } from '../../wire/pushprox/response-reader.js';
import { ID_HEADER, MAX_HEAD_BYTES, MAX_POLL_BODY_BYTES } from '../../wire/pushprox/wire-format.js';

/** What a poll is checked against; a config reload replaces it. */
export interface LongPollPolicy {
  clientGrants: readonly ClientGrant[] | undefined;
  limits: ProxyLimits;
  /** Whether the proxy itself answers to this name (then no client may poll for it). */
  isOwnName: (name: string) => boolean;
}

export interface PollEndpointOptions {
  registry: SessionRegistry;
  events: ProxyEvents;
  policy: () => LongPollPolicy;
  timings?: Partial<LongPollTimings> | undefined;
}

export const POLL_PATH = '/poll';
export const PUSH_PATH = '/push';

/**
 * PushProx's long-poll protocol on the proxy's listener, so existing PushProx clients work
 * unchanged: `POST /poll` (body: the client's FQDN) waits for a scrape and answers with it;
 * `POST /push` (body: the serialised response, with the scrape's Id) answers the scraper.
 * Each FQDN is one LongPollSession in the same registry as native tunnels.
 */
export class PollEndpoint {
  private readonly sessions = new Map<string, LongPollSession>();
  private readonly pending = new PendingScrapes();
  private readonly timings: LongPollTimings;
  private accepting = true;

  constructor(private readonly options: PollEndpointOptions) {
    this.timings = { ...DEFAULT_LONG_POLL_TIMINGS, ...options.timings };
  }

  /** Shutting down: new polls get 503 so clients move on; pushes still finish. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Scrapes handed out and not yet pushed (or ended), for tests. */
  get pendingScrapes(): number {
    return this.pending.size;
  }

  /** The session serving `name` through PushProx, if any. */
  session(name: string): LongPollSession | undefined {
    return this.sessions.get(name.toLowerCase());
  }

  handle(path: string, req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      sendText(res, 405, `natprox: ${path} is PushProx's long-poll endpoint and takes POST`, {
        code: 'NATPROX_BAD_REQUEST',
        headers: { allow: 'POST' },
      });
      return;
    }
    if (path === POLL_PATH) {
      if (!this.accepting) {
        sendText(res, 503, 'natprox: the proxy is shutting down; poll again shortly', {
          code: 'NATPROX_NO_CLIENT',
          headers: { 'retry-after': '1' },
        });
        return;
      }
      this.poll(req, res);
    } else this.push(req, res);
  }

  private poll(req: IncomingMessage, res: ServerResponse): void {
    // Over the limit: refused at once, and the rest read away so the 413 can be sent.
    readLimited(req, MAX_POLL_BODY_BYTES, {
      onOver: 'reject',
      rest: 'drain',
      what: 'the poll body (one FQDN)',
    }).then(
      (body) => this.startPoll(body.toString('utf8').trim(), req, res),
      (err: Error) =>
        sendText(res, 413, `natprox: ${err.message}`, {
          code: 'NATPROX_BAD_REQUEST',
          headers: { connection: 'close' },
        }),
    );
  }

  private startPoll(fqdn: string, req: IncomingMessage, res: ServerResponse): void {
    if (res.destroyed) return;
    const remoteAddress = remoteOf(req);
    const name = fqdn.toLowerCase();
    const problem =
      fqdn === '' ? 'the poll body must be the client FQDN; it was empty' : validateName(name);
    if (problem) {
      this.reject(res, remoteAddress, 400, `natprox: ${problem}`);
      return;
    }
    const policy = this.options.policy();
    if (policy.isOwnName(name)) {
      this.reject(res, remoteAddress, 403, ownNameRefusal([name]));
      return;
    }
    const auth = authorizeLongPoll(
      policy.clientGrants,
      req.headers.authorization,
      () => presentedCertificate(req.socket),
      name,
    );
    if (!auth.ok) {
      this.reject(res, remoteAddress, auth.status, auth.reason);
      return;
    }
    let session = this.sessions.get(name);
    if (session && !session.closed && session.grantKey !== auth.grantKey) {
      // Another clients: entry polls for this name now: a new registration, counted there.
      session.close('a client with another credential polled for its name');
    }
    if (!session || session.closed) {
      const { limits } = policy;
      const admission: EntryAdmission = auth.grant
        ? admitToEntry(this.options.registry, auth.grant, limits, [name])
        : { ok: true };
      if (!admission.ok) {
        this.reject(res, remoteAddress, 429, admission.reason);
        return;
      }
      if (admission.replaces === undefined && this.options.registry.size >= limits.maxClients) {
        this.reject(
          res,
          remoteAddress,
          503,
          `natprox: the proxy has reached its limit of ${limits.maxClients} clients (max_clients)`,
        );
        return;
      }
      admission.replaces?.close(
        `a newer registration of ${name} took its place; its clients: entry is at its max_tunnels`,
      );
      session = this.startSession(fqdn, remoteAddress, auth.grantKey);
    }
    session.addPoll(res, remoteAddress, auth.grantKey);
  }

  private startSession(
    fqdn: string,
    remoteAddress: string,
    grantKey: string | undefined,
  ): LongPollSession {
    const session = new LongPollSession(fqdn, remoteAddress, grantKey, this.pending, this.timings);
    const name = session.registration.names[0] as string;
    this.sessions.set(name, session);
    this.options.registry.add(session);
    this.options.events.emit('tunnelConnected', session);
    session.onClose((reason) => {
      if (this.sessions.get(name) === session) this.sessions.delete(name);
      this.options.events.emit('tunnelDisconnected', session, reason);
    });
    return session;
  }

  private push(req: IncomingMessage, res: ServerResponse): void {
    readPushedResponse(req, MAX_HEAD_BYTES).then(
      (pushed) => this.deliverPush(pushed, req, res),
      (err: Error) =>
        sendText(res, 400, `natprox: cannot read the pushed response: ${err.message}`, {
          code: 'NATPROX_BAD_REQUEST',
        }),
    );
  }

  private deliverPush(pushed: PushedResponse, req: IncomingMessage, res: ServerResponse): void {
    const refuse = (status: number, reason: string, headers: Record<string, string> = {}): void => {
      // Read and drop the rest of the body so the connection stays usable.
      req.unpipe(pushed.body);
      pushed.body.destroy();
      req.resume();
      sendText(res, status, reason, { code: 'NATPROX_BAD_REQUEST', headers });
    };
    const grants = this.options.policy().clientGrants;
    // A refused push is logged and counted like a refused tunnel, with the client's address.
    const refuseAuth = (auth: { status: number; reason: string }): void => {
      this.options.events.emit('tunnelRejected', {
        remoteAddress: remoteOf(req),
        status: auth.status,
        reason: auth.reason,
      });
      refuse(auth.status, auth.reason, { 'www-authenticate': 'Basic realm="natprox"' });
    };
    const certificate = (): PresentedCertificate | undefined => presentedCertificate(req.socket);
    const known = authorizeLongPoll(grants, req.headers.authorization, certificate, undefined);
    if (!known.ok) {
      refuseAuth(known);
      return;
    }
    const id = pushed.headers[ID_HEADER];
    if (typeof id !== 'string' || id === '') {
      refuse(
        400,
        'natprox: the pushed response has no Id header; it cannot be matched to a scrape',
      );
      return;
    }
    const scrape = this.pending.get(id);
    if (!scrape) {
      refuse(
        404,
        `natprox: no scrape with Id ${id.slice(0, 64)} is waiting: it finished, timed out or was cancelled, or the Id is wrong; this push changed nothing`,
      );
      return;
    }
    const auth = authorizeLongPoll(
      this.options.policy().clientGrants,
      req.headers.authorization,
      certificate,
      scrape.name,
    );
    if (!auth.ok) {
      refuseAuth(auth);
      return;
    }
    // Answer the push once the body has gone to the scraper, or say why it did not.
    const body = pushed.body;
    let answered = false;
    const answer = (status: number, text: string): void => {
      if (answered) return;
      answered = true;
      if (status !== 200) {
        req.unpipe(body);
        req.resume();
      }
      sendText(res, status, text, status === 200 ? {} : { code: 'NATPROX_BAD_REQUEST' });
    };
    body.once('end', () => {
      if (body.complete) answer(200, 'natprox: result delivered');
      else answer(400, 'natprox: the pushed body ended before its declared end');
    });
    body.once('close', () =>
      answer(
        410,
        'natprox: the scrape ended (scraper gone or deadline) before the whole body was relayed',
      ),
    );
    scrape.deliver(pushed);
  }

  private reject(res: ServerResponse, remoteAddress: string, status: number, reason: string): void {
    this.options.events.emit('tunnelRejected', { remoteAddress, status, reason });
    sendText(res, status, reason, {
      code: status === 401 || status === 403 ? 'NATPROX_UNAUTHORIZED' : 'NATPROX_BAD_REQUEST',
      headers: status === 401 ? { 'www-authenticate': 'Basic realm="natprox"' } : {},
    });
  }
}
