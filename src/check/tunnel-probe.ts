import http, { type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { sha256Hex } from '../auth/secret-hash.js';
import { tunnelUrl } from '../client/native/tunnel-dialer.js';
import {
  CLIENT_AUTH_HEADER,
  DRY_RUN_HEADER,
  encodeRegistration,
  GRANTS_HEADER,
  REGISTRATION_HEADER,
  TUNNEL_UPGRADE_TOKEN,
  type Registration,
} from '../wire/protocol.js';
import { readLimited } from '../util/read-limited.js';
import { VERSION } from '../version.js';
import { failed, notChecked, passed, STEP, type StepOutcome } from './outcome.js';

export type TunnelAnswer =
  | { kind: 'response'; status: number; headers: IncomingHttpHeaders; body: string }
  /** 101: a proxy that predates dry runs opened a real tunnel (closed at once). */
  | { kind: 'upgraded' }
  | { kind: 'timeout' }
  | { kind: 'error'; message: string };

export interface TunnelProbeOptions {
  proxyUrl: URL;
  registration: Registration;
  token: string | undefined;
  timeoutMs: number;
}

const MAX_BODY_BYTES = 4096;

/**
 * Sends the client's own upgrade request on `socket` (TCP, or TLS already verified), marked
 * as a dry run so the proxy registers nothing, and reads whatever comes back.
 */
export function probeTunnel(socket: Socket, options: TunnelProbeOptions): Promise<TunnelAnswer> {
  const url = tunnelUrl(options.proxyUrl);
  const headers: Record<string, string> = {
    host: url.host,
    connection: 'Upgrade',
    upgrade: TUNNEL_UPGRADE_TOKEN,
    [REGISTRATION_HEADER]: encodeRegistration(options.registration),
    [DRY_RUN_HEADER]: '1',
    'user-agent': `natprox-check/${VERSION}`,
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer: TunnelAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      socket.destroy();
      resolve(answer);
    };
    const req = http.request({
      method: 'GET',
      path: url.pathname,
      headers,
      // createConnection is only used without an agent.
      createConnection: () => socket,
    });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), options.timeoutMs);
    req.once('error', (err) => finish({ kind: 'error', message: err.message }));
    req.once('upgrade', (_res, upgraded: Socket) => {
      upgraded.destroy();
      finish({ kind: 'upgraded' });
    });
    req.once('response', (res) => {
      // What arrived of the body, also when it broke off: the start says why.
      void readLimited(res, MAX_BODY_BYTES, {
        onOver: 'truncate',
        rest: 'drain',
        onBreak: 'resolve',
      }).then((body) =>
        finish({
          kind: 'response',
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: body.toString('utf8').trim(),
        }),
      );
    });
    req.end();
  });
}

export interface TunnelContext {
  /** The tunnel URL's path, as sent. */
  path: string;
  names: readonly string[];
  token: string | undefined;
}

const PASS_UPGRADE_HINT =
  'make the reverse proxy pass the Upgrade through: nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; Caddy: reverse_proxy passes upgrades as it is (look for a header_up that removes Upgrade or Connection)';

/** Maps the answer to the upgrade step and the authentication step. */
export function tunnelOutcomes(
  answer: TunnelAnswer,
  context: TunnelContext,
): [StepOutcome, StepOutcome] {
  const authNotChecked = notChecked(STEP.auth, 'the tunnel upgrade did not get through');
  const names = context.names.join(', ');
  if (answer.kind === 'timeout') {
    return [
      failed(
        STEP.upgrade,
        `no answer to the upgrade request for ${context.path}`,
        `something on the way holds the request; ${PASS_UPGRADE_HINT}`,
      ),
      authNotChecked,
    ];
  }
  if (answer.kind === 'error') {
    return [
      failed(
        STEP.upgrade,
        `the connection ended without an answer to the upgrade request (${answer.message})`,
        'the server on that port may not be natprox proxy, or it speaks TLS (use https://), or something on the way cut the connection',
      ),
      authNotChecked,
    ];
  }
  if (answer.kind === 'upgraded') {
    return [
      passed(STEP.upgrade, `the proxy switched ${context.path} to the tunnel protocol (101)`),
      passed(
        STEP.auth,
        `token accepted; will register ${names}`,
        `this proxy predates natprox check's dry run, so it registered ${names} for a moment; update it`,
      ),
    ];
  }

  const { status, headers, body } = answer;
  const fromNatprox = body.startsWith('natprox');
  const reason = body.replace(/^natprox:\s*/, '').split('\n')[0] ?? '';
  const reached = passed(
    STEP.upgrade,
    `the Upgrade request reached natprox proxy at ${context.path}`,
  );
  const dryRunOk = headers[DRY_RUN_HEADER] === 'ok';

  if (status === 200 && dryRunOk) {
    const upgrade = passed(
      STEP.upgrade,
      `the Upgrade request reached natprox proxy at ${context.path} (dry run: nothing registered)`,
    );
    const grants = String(headers[GRANTS_HEADER] ?? '');
    if (headers[CLIENT_AUTH_HEADER] === 'none') {
      return [
        upgrade,
        passed(
          STEP.auth,
          `the proxy checks no client tokens (no clients: in its config): any client may register any name; will register ${names}`,
        ),
      ];
    }
    return [
      upgrade,
      passed(
        STEP.auth,
        `${headers[CLIENT_AUTH_HEADER] === 'certificate' ? 'client certificate' : 'token'} accepted; may register ${grants}; will register ${names}`,
      ),
    ];
  }
  if (status === 401 && fromNatprox) {
    if (reason.startsWith('the client certificate')) {
      return [
        reached,
        failed(
          STEP.auth,
          `${reason} (HTTP 401)`,
          "check --cert-file against the proxy's clients: (cert_subject, cert_sha256) and tls.client_ca_file",
        ),
      ];
    }
    if (!context.token) {
      return [
        reached,
        failed(
          STEP.auth,
          `the proxy requires a client token (HTTP 401)`,
          "give --token-file (or token_file: in the config) with a token listed under the proxy's clients: (natprox token makes one)",
        ),
      ];
    }
    return [
      reached,
      failed(
        STEP.auth,
        `the proxy does not know this token (HTTP 401)`,
        `check --token-file (or token_file:) and the proxy's clients: — this token's token_sha256 is ${sha256Hex(context.token)}`,
      ),
    ];
  }
  if (status === 403 && fromNatprox) {
    return [
      reached,
      failed(
        STEP.auth,
        `${reason} (HTTP 403)`,
        /the proxy itself answers to/.test(reason)
          ? 'give the client a name of its own (--name, names:): the proxy answers to this one itself'
          : reason.startsWith('this client certificate')
            ? `serve only names the certificate grants (--name, names:), or grant ${names} to its entry in the proxy's clients: (names:)`
            : `serve only names the token grants (--name, names:), or grant ${names} to this token in the proxy's clients: (names:)`,
      ),
    ];
  }
  if (status === 429 && fromNatprox) {
    return [
      reached,
      failed(
        STEP.auth,
        `${reason} (HTTP 429)`,
        "other clients with the same token or certificate hold that entry's names or tunnels: stop the ones no longer needed, or raise max_names / max_tunnels on the entry in the proxy's clients:",
      ),
    ];
  }
  if (status === 400 && fromNatprox) {
    return [
      reached,
      failed(
        STEP.auth,
        `the proxy refused the registration: ${reason} (HTTP 400)`,
        "check the names, labels and allow list against the proxy's limits (max_names_per_client, max_labels_per_client, max_ports_per_client; no job or instance label), and that client and proxy run the same natprox version",
      ),
    ];
  }
  if (status === 503 && fromNatprox) {
    return [
      reached,
      failed(
        STEP.auth,
        `${reason} (HTTP 503)`,
        /max_clients/.test(reason)
          ? "raise limits: max_clients in the proxy's config, or stop clients that are no longer needed"
          : 'the proxy is shutting down: run the check again once it is back',
      ),
    ];
  }

  const server = headers.server ? ` (server: ${String(headers.server)})` : '';
  const firstLine = body.split('\n')[0]?.slice(0, 200) ?? '';
  const said = firstLine ? `: ${firstLine}` : '';
  let detail: string;
  let hint = PASS_UPGRADE_HINT;
  if (status === 426 && fromNatprox) {
    detail = `the proxy got the request without its Upgrade header (HTTP 426): an intermediary on the way dropped it`;
  } else if (status === 426 || status === 200) {
    detail = `an intermediary answered HTTP ${status}${server} instead of passing the Upgrade through${said}`;
  } else if (status === 404) {
    detail = `HTTP 404 for ${context.path}${server}${said}`;
    hint = `the request did not reach natprox's tunnel endpoint: if a reverse proxy serves natprox under a path, make it forward ${context.path} to the proxy's /natprox/v1/tunnel; and ${PASS_UPGRADE_HINT}`;
  } else if (status === 401 || status === 403) {
    detail = `an intermediary refused the request (HTTP ${status}${server})${said}`;
    hint = `the reverse proxy in front of natprox has its own access rules for ${context.path}: exempt the tunnel path (natprox checks the client token itself)`;
  } else if (status >= 502 && status <= 504) {
    detail = `an intermediary answered HTTP ${status}${server}${said}`;
    hint =
      'the natprox proxy behind it may be down, or the reverse proxy points at the wrong upstream: check both';
  } else {
    detail = `unexpected answer HTTP ${status}${server}${said}`;
  }
  return [failed(STEP.upgrade, detail, hint), authNotChecked];
}
