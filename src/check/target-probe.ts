import http from 'node:http';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { AllowedTarget } from '../client/allowlist.js';
import { formatHostPort } from '../util/host-port.js';
import { VERSION } from '../version.js';
import { failed, passed, STEP, type StepOutcome } from './outcome.js';

export type TargetAnswer =
  | { kind: 'http'; status: number; statusText: string; elapsedMs: number }
  /** No HTTP, but a TLS handshake: an https target, scraped through CONNECT. */
  | { kind: 'tls'; elapsedMs: number }
  | { kind: 'timeout' }
  | { kind: 'error'; code: string; message: string };

/** The path the check fetches: the first allowed path prefix, else /metrics. */
export function probePath(target: AllowedTarget): string {
  return target.pathPrefixes?.[0] ?? '/metrics';
}

/** GETs the target's path as the client would fetch a scrape; any HTTP status means it answers. */
export async function probeTarget(target: AllowedTarget, timeoutMs: number): Promise<TargetAnswer> {
  const answer = await getStatus(target, timeoutMs);
  if (
    answer.kind === 'error' &&
    /ECONNRESET|HPE_|socket hang up/.test(`${answer.code} ${answer.message}`)
  ) {
    const secure = await tlsHandshake(target, timeoutMs);
    if (secure) return secure;
  }
  return answer;
}

function getStatus(target: AllowedTarget, timeoutMs: number): Promise<TargetAnswer> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer: TargetAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(answer);
    };
    const req = http.request({
      host: target.host,
      port: target.port,
      method: 'GET',
      path: probePath(target),
      headers: {
        host: formatHostPort(target.host, target.port),
        'user-agent': `natprox-check/${VERSION}`,
        accept: '*/*',
      },
      agent: false,
    });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    req.once('error', (err: NodeJS.ErrnoException) =>
      finish({ kind: 'error', code: err.code ?? '', message: err.message }),
    );
    req.once('response', (res) => {
      res.resume();
      finish({
        kind: 'http',
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        elapsedMs: Date.now() - startedAt,
      });
    });
    req.end();
  });
}

function tlsHandshake(target: AllowedTarget, timeoutMs: number): Promise<TargetAnswer | undefined> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      ...(isIP(target.host) ? {} : { servername: target.host }),
      // Only "does it speak TLS?": the scraper verifies the target end to end through CONNECT.
      rejectUnauthorized: false,
    });
    const finish = (answer: TargetAnswer | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('error', () => finish(undefined));
    socket.once('secureConnect', () => finish({ kind: 'tls', elapsedMs: Date.now() - startedAt }));
  });
}

export function targetOutcome(
  target: AllowedTarget,
  answer: TargetAnswer,
  timeoutMs: number,
): StepOutcome {
  const where = formatHostPort(target.host, target.port);
  const step = STEP.target(where);
  const path = probePath(target);
  const running = `is the exporter running on ${where}, and listening on that address?`;
  switch (answer.kind) {
    case 'http':
      return passed(
        step,
        `GET ${path} → ${[answer.status, answer.statusText].join(' ').trim()} in ${answer.elapsedMs} ms`,
      );
    case 'tls':
      return passed(
        step,
        `speaks TLS (an https target, scraped through CONNECT); handshake in ${answer.elapsedMs} ms`,
      );
    case 'timeout':
      return failed(
        step,
        `no answer to GET ${path} within ${timeoutMs} ms`,
        `${running} It accepts connections but does not answer: is it overloaded or stuck? A local firewall may also drop packets`,
      );
    case 'error':
      if (answer.code === 'ECONNREFUSED') {
        return failed(step, `connection refused`, `${running} (ss -ltnp | grep :${target.port})`);
      }
      if (answer.code === 'ENOTFOUND' || answer.code === 'EAI_AGAIN') {
        return failed(
          step,
          `${target.host} cannot be resolved (${answer.code})`,
          `check the host in --allow (or allow:) — it is resolved on this machine`,
        );
      }
      return failed(step, `GET ${path} failed: ${answer.message}`, running);
  }
}
