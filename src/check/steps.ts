import { lookup } from 'node:dns/promises';
import net, { isIP, type Socket } from 'node:net';
import {
  resolveClientSettings,
  type ClientFlags,
  type ClientSettings,
} from '../config/client-settings.js';
import { describeTarget } from '../client/allowlist.js';
import { clientProxies } from '../client/proxy-endpoint.js';
import { ConfigError } from '../errors.js';
import type { ClientTls } from '../wire/tls-connect.js';
import { formatHostPort, urlHostPort } from '../util/host-port.js';
import { failed, passed, STEP, type StepOutcome } from './outcome.js';

/** Step 1: the same flags and config file as the client, resolved the same way. */
export function checkConfig(
  flags: ClientFlags,
):
  | { outcome: StepOutcome; settings: ClientSettings }
  | { outcome: StepOutcome; error: ConfigError } {
  let settings: ClientSettings;
  try {
    settings = resolveClientSettings(flags);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return {
      outcome: failed(
        STEP.config,
        err.message,
        'fix the flag or the config file named above; natprox check takes the same flags as natprox client (see natprox client --help)',
      ),
      error: err,
    };
  }
  const { names, allow, labels } = settings.client;
  const proxies = clientProxies(settings.client);
  const described = proxies.map(
    ({ url, tls }) =>
      `${url.origin}${url.pathname === '/' ? '' : url.pathname} (${trustText(url, tls)})`,
  );
  const withToken = proxies.filter((proxy) => proxy.token).length;
  const allowed = allow.map(describeTarget).join(', ');
  const labelText = Object.entries(labels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
  const parts = [
    `${proxies.length === 1 ? 'proxy' : 'proxies'} ${described.join(', ')}`,
    ...(settings.client.connectAllAddresses
      ? [
          'every address of each proxy host (--connect-all-addresses; checked here: the first that answers)',
        ]
      : []),
    `names ${names.join(', ')}`,
    `allow ${allowed}`,
    ...(labelText ? [`labels ${labelText}`] : []),
    withToken === proxies.length
      ? 'token given'
      : withToken === 0
        ? 'no token'
        : `token given for ${withToken} of ${proxies.length} proxies`,
    ...(proxies.some(({ tls }) => tls?.cert) ? ['client certificate given'] : []),
  ];
  const plain = proxies
    .map(({ url }) => url)
    .find((url) => url.protocol === 'http:' && !isLoopback(urlHostPort(url).host));
  const hints = [
    ...(plain
      ? [
          `the token and every scrape cross the network unencrypted${proxies.length > 1 ? ` to ${plain.host}` : ''}: give the proxy tls: and use https://`,
        ]
      : []),
    ...settings.warnings,
  ];
  const hint = hints.length > 0 ? hints.join('; ') : undefined;
  return { outcome: passed(STEP.config, parts.join('; '), hint), settings };
}

function trustText(url: URL, tls: ClientTls | undefined): string {
  if (url.protocol !== 'https:') return 'plain http';
  if (tls?.pinSha256) return 'TLS, pinned certificate';
  return tls?.ca ? 'TLS, CA from the CA file' : 'TLS, system CAs';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Rejects with an error whose code is "ETIMEOUT" when `promise` takes longer than `ms`. */
async function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEOUT' })),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Step 2: every A/AAAA address of the proxy's host; an IP literal needs no lookup. */
export async function checkDns(
  host: string,
  timeoutMs: number,
): Promise<{ outcome: StepOutcome; addresses?: string[] }> {
  if (isIP(host)) {
    return {
      outcome: passed(STEP.dns, `${host} is an IP address: no lookup needed`),
      addresses: [host],
    };
  }
  try {
    const found = await bounded(lookup(host, { all: true, verbatim: true }), timeoutMs);
    const addresses = [...new Set(found.map((entry) => entry.address))];
    if (addresses.length === 0)
      throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
    return { outcome: passed(STEP.dns, `${host} → ${addresses.join(', ')}`), addresses };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') {
      return {
        outcome: failed(
          STEP.dns,
          `${host} has no A or AAAA record`,
          `check the host name in the proxy URL (getent hosts ${host}); a new DNS record may take a while to appear`,
        ),
      };
    }
    const detail =
      code === 'ETIMEOUT'
        ? `no answer for ${host} within ${timeoutMs} ms`
        : code === 'EAI_AGAIN'
          ? `the lookup of ${host} failed for now (EAI_AGAIN: no answer from the DNS server)`
          : `the lookup of ${host} failed: ${(err as Error).message}`;
    return {
      outcome: failed(
        STEP.dns,
        detail,
        "check this machine's network and its DNS resolver (/etc/resolv.conf, resolvectl status)",
      ),
    };
  }
}

/** Step 3: a TCP connection to the first address that accepts one; the socket is kept for TLS. */
export async function checkTcp(
  addresses: readonly string[],
  port: number,
  timeoutMs: number,
): Promise<{ outcome: StepOutcome; socket?: Socket }> {
  const problems: Array<{ where: string; code: string; text: string }> = [];
  // A bounded number of attempts keeps the whole step within a few timeouts.
  for (const address of addresses.slice(0, 3)) {
    const where = formatHostPort(address, port);
    const startedAt = Date.now();
    try {
      const socket = await connectTcp(address, port, timeoutMs);
      const earlier = problems.map((p) => `; ${p.where}: ${p.text}`).join('');
      return {
        outcome: passed(
          STEP.tcp,
          `connected to ${where} in ${Date.now() - startedAt} ms${earlier}`,
        ),
        socket,
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      problems.push({ where, code, text: tcpProblem(code, err as Error, timeoutMs) });
    }
  }
  const first = problems[0] ?? { where: String(port), code: '', text: 'no address' };
  return {
    outcome: failed(
      STEP.tcp,
      problems.map((p) => `${p.where}: ${p.text}`).join('; '),
      tcpHint(first.code, first.where, port),
    ),
  };
}

function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEOUT' }));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // Later errors surface through whoever uses the socket next (TLS, the HTTP request).
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

function tcpProblem(code: string, err: Error, timeoutMs: number): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEOUT':
    case 'ETIMEDOUT':
      return `no answer within ${timeoutMs} ms`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route (${code})`;
    default:
      return err.message;
  }
}

function tcpHint(code: string, where: string, port: number): string {
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens on ${where}: is natprox proxy running there, and is the port in the proxy URL right? (a firewall that rejects looks the same)`;
    case 'ETIMEOUT':
    case 'ETIMEDOUT':
      return `packets to ${where} go unanswered: is the host up, and does its firewall (or the VPS's security group) let port ${port} in?`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'this machine has no route there: check its network (for an IPv6 address, whether it has IPv6 at all)';
    default:
      return `check that ${where} is reachable from this machine`;
  }
}
