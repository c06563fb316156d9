import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseAuthorization } from '../../auth/credentials.js';
import { presentedCertificate } from '../../auth/client-certificate.js';
import {
  acceptsCertificates,
  authenticateClient,
  certificateRefusal,
  credentialName,
  grantKey,
  type ClientAuth,
  type ClientGrant,
} from '../../auth/client-grants.js';
import type { HeartbeatOptions } from '../../wire/heartbeat.js';
import { ProxyTunnelSession } from './proxy-tunnel-session.js';
import {
  CLIENT_AUTH_HEADER,
  decodeRegistration,
  DRY_RUN_HEADER,
  GRANTS_HEADER,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE_TOKEN,
  type Registration,
} from '../../wire/protocol.js';
import { sendText } from '../plain-response.js';
import { remoteOf, writeRawResponse } from '../raw-response.js';
import type { ProxyEvents } from '../proxy-events.js';
import { admitToEntry, type EntryAdmission } from '../entry-limits.js';
import { ownNameRefusal } from '../own-names.js';
import type { ProxyLimits } from '../proxy-limits.js';
import type { SessionRegistry } from '../session-registry.js';

/** What a new tunnel is checked against; a config reload replaces it. */
export interface TunnelPolicy {
  /** Undefined: no tokens configured, any client may connect (loopback demos and tests). */
  clientGrants: readonly ClientGrant[] | undefined;
  limits: ProxyLimits;
  /** Whether the proxy itself answers to this name (then no client may register it). */
  isOwnName: (name: string) => boolean;
}

export interface TunnelEndpointOptions {
  registry: SessionRegistry;
  events: ProxyEvents;
  policy: () => TunnelPolicy;
  heartbeat: HeartbeatOptions;
  /** max_tunnel_control_bytes_per_second, read at every check (a reload changes it). */
  controlBytesPerSecond: () => number;
}

/**
 * Accepts native tunnels: checks the upgrade request (token, names, limits), answers
 * 101 Switching Protocols and hands the socket to a ProxyTunnelSession. A rejected client
 * gets a plain HTTP error with the reason in the body.
 */
export class TunnelEndpoint {
  private accepting = true;

  constructor(private readonly options: TunnelEndpointOptions) {}

  stopAccepting(): void {
    this.accepting = false;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remoteAddress = remoteOf(req);
    const reject = (status: number, reason: string, headers: Record<string, string> = {}): void => {
      this.options.events.emit('tunnelRejected', { remoteAddress, status, reason });
      writeRawResponse(socket, status, reason, headers);
    };
    const path = (req.url ?? '').split('?')[0];
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (
      path !== TUNNEL_PATH ||
      !upgrade.split(',').some((t) => t.trim() === TUNNEL_UPGRADE_TOKEN)
    ) {
      reject(
        404,
        `natprox: no upgrade here; natprox clients connect to ${TUNNEL_PATH} with "Upgrade: ${TUNNEL_UPGRADE_TOKEN}"`,
      );
      return;
    }
    if (!this.accepting) {
      reject(503, 'natprox: the proxy is shutting down; reconnect to another or retry later');
      return;
    }
    const policy = this.options.policy();
    const { limits } = policy;
    const registration = decodeRegistration(headerValue(req.headers[REGISTRATION_HEADER]), {
      maxNames: limits.maxNamesPerClient,
      maxLabels: limits.maxLabelsPerClient,
      maxPorts: limits.maxPortsPerClient,
    });
    if (typeof registration === 'string') {
      reject(400, `natprox: invalid registration: ${registration}`);
      return;
    }
    const own = registration.names.filter(policy.isOwnName);
    if (own.length > 0) {
      reject(403, ownNameRefusal(own));
      return;
    }
    const grants = policy.clientGrants;
    let grant: ClientGrant | undefined;
    let via: 'token' | 'certificate' | undefined;
    if (grants !== undefined) {
      const presented = parseAuthorization(req.headers.authorization);
      const token = presented?.kind === 'bearer' ? presented.token : undefined;
      const auth = authenticateClient(
        grants,
        token,
        () => presentedCertificate(socket),
        registration.names,
      );
      if (!auth.ok) {
        const [status, reason] = tunnelRefusal(auth, grants, presented !== undefined);
        reject(
          status,
          reason,
          status === 401 ? { 'www-authenticate': 'Bearer realm="natprox"' } : {},
        );
        return;
      }
      grant = auth.grant;
      via = auth.via;
    }
    const admission: EntryAdmission = grant
      ? admitToEntry(this.options.registry, grant, limits, registration.names)
      : { ok: true };
    if (!admission.ok) {
      reject(429, admission.reason);
      return;
    }
    if (admission.replaces === undefined && this.options.registry.size >= limits.maxClients) {
      reject(
        503,
        `natprox: the proxy has reached its limit of ${limits.maxClients} clients (max_clients)`,
      );
      return;
    }
    if (headerValue(req.headers[DRY_RUN_HEADER]) === '1') {
      // natprox check: every check above passed; answer without registering anything.
      const names = registration.names.join(', ');
      writeRawResponse(
        socket,
        200,
        grant
          ? `natprox: dry run: the ${credentialName(grant)} is accepted and grants ${grant.names.join(', ')}; ${names} would be registered; nothing was registered`
          : `natprox: dry run: this proxy has no clients: in its config, so any client may register any name; ${names} would be registered; nothing was registered`,
        {
          [DRY_RUN_HEADER]: 'ok',
          [GRANTS_HEADER]: grant ? grant.names.join(', ') : '*',
          [CLIENT_AUTH_HEADER]: via ?? 'none',
        },
      );
      return;
    }

    // HTTP/2 takes the socket over only once the 101 is written: over TLS, a write still in
    // flight when the session attaches trips an assertion inside Node's http2.
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_UPGRADE_TOKEN}\r\n\r\n`,
      (err) => {
        if (err || socket.destroyed) {
          socket.destroy();
          return;
        }
        // At its entry's tunnel limit, a reconnecting client takes its oldest tunnel's place.
        admission.replaces?.close(
          `the client reconnected (a newer tunnel registered ${registration.names.join(', ')}) and its clients: entry is at its max_tunnels`,
        );
        this.startSession(socket, head, registration, remoteAddress, grant && grantKey(grant));
      },
    );
  }

  private startSession(
    socket: Duplex,
    head: Buffer,
    registration: Registration,
    remoteAddress: string,
    grantKey: string | undefined,
  ): void {
    if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    const address = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
    if (head.length > 0) socket.unshift(head);
    const session = new ProxyTunnelSession(
      socket,
      registration,
      remoteAddress,
      grantKey,
      this.options.heartbeat,
      {
        bytesPerSecond: this.options.controlBytesPerSecond,
        onExceeded: (reason) =>
          this.options.events.emit('connectionCutOff', {
            address: address ?? '',
            remoteAddress,
            reason: `tunnel flood: ${reason}`,
          }),
      },
    );
    this.options.registry.add(session);
    this.options.events.emit('tunnelConnected', session);
    session.onClose((reason) => this.options.events.emit('tunnelDisconnected', session, reason));
  }
}

/** The status and message for a client that failed authentication. */
function tunnelRefusal(
  auth: Exclude<ClientAuth, { ok: true }>,
  grants: readonly ClientGrant[],
  sentAuthorization: boolean,
): [401 | 403, string] {
  switch (auth.problem) {
    case 'names-refused':
      return [
        403,
        `natprox: this ${credentialName(auth.grant)} may not register ${auth.refused.map((n) => `"${n}"`).join(', ')}; it grants ${auth.grant.names.join(', ')}`,
      ];
    case 'unknown-certificate':
      return [401, certificateRefusal(grants, auth.certificate)];
    case 'unknown-token':
      return [
        401,
        'natprox: the client token is not known to this proxy; check --token-file and the proxy config',
      ];
    case 'no-credentials':
      return [
        401,
        sentAuthorization
          ? 'natprox: natprox clients send their token as a bearer token (--token-file)'
          : acceptsCertificates(grants)
            ? 'natprox: this proxy requires a client token (--token-file) or a client certificate (--cert-file and --key-file)'
            : 'natprox: this proxy requires a client token (--token-file)',
      ];
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Answers a plain GET of the tunnel path: a client asked for an upgrade, but the Upgrade and
 * Connection headers were lost on the way, which a reverse proxy does unless told otherwise.
 */
export function sendUpgradeRequired(res: ServerResponse): void {
  sendText(
    res,
    426,
    `natprox: the tunnel needs "Upgrade: ${TUNNEL_UPGRADE_TOKEN}" and "Connection: Upgrade", and this request arrived without them: a reverse proxy on the way drops them. nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; (Caddy's reverse_proxy passes upgrades as it is)`,
    {
      code: 'NATPROX_BAD_REQUEST',
      headers: { upgrade: TUNNEL_UPGRADE_TOKEN, connection: 'Upgrade' },
    },
  );
}
