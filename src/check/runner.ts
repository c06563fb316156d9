import type { Socket } from 'node:net';
import type { ClientFlags } from '../config/client-settings.js';
import { tunnelUrl } from '../client/native/tunnel-dialer.js';
import { VERSION } from '../version.js';
import { Allowlist, type AllowedTarget } from '../client/allowlist.js';
import { clientProxies, type ProxyEndpoint } from '../client/proxy-endpoint.js';
import { formatHostPort, urlHostPort } from '../util/host-port.js';
import { redactUrl } from '../util/redact-url.js';
import { DEFAULT_STEP_TIMEOUT_MS, notChecked, STEP, unused, type StepOutcome } from './outcome.js';
import { checkConfig, checkDns, checkTcp } from './steps.js';
import { targetOutcome, probeTarget } from './target-probe.js';
import { probeTls, tlsOutcome } from './tls-probe.js';
import { probeTunnel, tunnelOutcomes } from './tunnel-probe.js';

export interface CheckOptions {
  /** Receives each printed line (without the newline) as soon as its step is done. */
  write: (line: string) => void;
  /** Bound on each network step (DNS, TCP, TLS, upgrade, each target). */
  stepTimeoutMs?: number;
  now?: () => Date;
}

const SYMBOL = { pass: '✔', fail: '✘', skip: '-', unused: '-' } as const;

/** One step as printed: `✔ step: detail`, and for a failure (or a warning) `  → what to do`. */
export function formatOutcome(outcome: StepOutcome): string[] {
  const lines = [`${SYMBOL[outcome.status]} ${outcome.step}: ${outcome.detail}`];
  if (outcome.hint) lines.push(`  → ${outcome.hint}`);
  return lines;
}

/**
 * Walks the client's path step by step (configuration, DNS, TCP, TLS, tunnel upgrade,
 * authentication, each allowlisted target) and prints one line per step. Steps that depend on
 * a failed one are printed as not checked; the local targets depend only on the
 * configuration. Resolves with the exit code: 0 all passed, 1 a step failed, 2 bad config.
 */
export async function runCheck(flags: ClientFlags, options: CheckOptions): Promise<number> {
  const timeoutMs = options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const now = options.now ?? (() => new Date());
  let failures = 0;
  const report = (outcome: StepOutcome): void => {
    if (outcome.status === 'fail') failures += 1;
    for (const line of formatOutcome(outcome)) options.write(line);
  };

  const config = checkConfig(flags);
  report(config.outcome);
  if (!('settings' in config)) {
    const why = 'the configuration is invalid';
    for (const step of [STEP.dns, STEP.tcp, STEP.tls, STEP.upgrade, STEP.auth]) {
      report(notChecked(step, why));
    }
    report(notChecked('targets', why));
    return 2;
  }
  const { names, labels, allow } = config.settings.client;
  const proxies = clientProxies(config.settings.client);
  // Each proxy in turn: the client keeps a tunnel to every one of them.
  for (const [i, proxy] of proxies.entries()) {
    if (proxies.length > 1)
      options.write(`proxy ${i + 1} of ${proxies.length}: ${redactUrl(proxy.url)}`);
    await checkProxy(proxy, {
      names,
      labels: labels ?? {},
      allow,
      timeoutMs,
      now,
      report,
      transport: config.settings.client.transport ?? 'native',
    });
  }

  for (const target of allow) {
    report(targetOutcome(target, await probeTarget(target, timeoutMs), timeoutMs));
  }
  return failures === 0 ? 0 : 1;
}

interface ProxyCheckContext {
  names: string[];
  labels: Record<string, string>;
  allow: AllowedTarget[];
  timeoutMs: number;
  now: () => Date;
  report: (outcome: StepOutcome) => void;
  transport: 'native' | 'pushprox';
}

/** DNS, TCP, TLS, tunnel upgrade and authentication against one proxy. */
async function checkProxy(proxy: ProxyEndpoint, context: ProxyCheckContext): Promise<void> {
  const { url: proxyUrl, token, tls } = proxy;
  const { names, labels, allow, timeoutMs, now, report } = context;
  const { host, port } = urlHostPort(proxyUrl);
  const secure = proxyUrl.protocol === 'https:';
  let socket: Socket | undefined;
  try {
    const skipRest = (from: number, why: string): void => {
      const rest = [STEP.dns, STEP.tcp, STEP.tls, STEP.upgrade, STEP.auth].slice(from);
      for (const step of rest) {
        if (step === STEP.tls && !secure) report(unused(STEP.tls, 'not used (http:// proxy URL)'));
        else report(notChecked(step, why));
      }
    };
    const dns = await checkDns(host, timeoutMs);
    report(dns.outcome);
    if (!dns.addresses) return skipRest(1, `no address for ${host}`);

    const tcp = await checkTcp(dns.addresses, port, timeoutMs);
    report(tcp.outcome);
    if (!tcp.socket) return skipRest(2, `no connection to ${formatHostPort(host, port)}`);
    socket = tcp.socket;

    if (secure) {
      const probe = await probeTls(socket, host, tls, timeoutMs);
      if (probe.ok) socket = probe.facts.socket;
      const outcome = tlsOutcome(probe, { host, port, tls, now: now() });
      report(outcome);
      // As the client: nothing is sent, the token least of all, unless TLS passed.
      if (outcome.status !== 'pass') return skipRest(3, 'TLS failed; nothing was sent');
    } else {
      report(unused(STEP.tls, 'not used (http:// proxy URL)'));
    }

    if (context.transport === 'pushprox') {
      // A PushProx proxy hands a scrape to any waiting poll, even one the check would
      // abandon, and that scrape would be lost: no trial poll is sent.
      const why =
        'PushProx transport: a trial poll could swallow a real scrape; the client logs each poll';
      report(notChecked(STEP.upgrade, why));
      report(notChecked(STEP.auth, why));
      return;
    }
    const path = tunnelUrl(proxyUrl).pathname;
    const answer = await probeTunnel(socket, {
      proxyUrl,
      registration: { names, labels, ports: new Allowlist(allow).ports, version: VERSION },
      token,
      timeoutMs,
    });
    for (const outcome of tunnelOutcomes(answer, { path, names, token })) report(outcome);
  } finally {
    socket?.destroy();
  }
}
