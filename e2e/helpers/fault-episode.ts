/**
 * One fault on the home link, measured: scrapes run at a steady rate before, during and
 * after it; the times at which the proxy dropped the tunnel, the client noticed, and the
 * tunnel came back are taken from the proxy's /api/v1/clients and the client's log.
 */
import { CLIENT_NAME, Load, type Deployment, type LoadResult } from './netns-deployment.js';

export interface EpisodeFigures {
  /** ms from the fault to the proxy no longer listing the tunnel (undefined: it never did). */
  proxyDroppedMs: number | undefined;
  /** ms from the fault to the client's "tunnel down" (undefined: it never logged it). */
  clientNoticedMs: number | undefined;
  /** Dial attempts the client made while the fault lasted, and the delays it waited. */
  redials: number;
  retryDelaysMs: number[];
  /** ms from healing to the tunnel listed again. */
  backAfterHealMs: number;
  results: LoadResult[];
  /** Scrapes sent after the drop and before the heal, and how many of them got a quick 503. */
  whileDown: number;
  quick503: number;
  /** Slowest answer (head) to a scrape sent while the tunnel was down. */
  slowestDownHeadMs: number;
  /** Scrapes that ended past their deadline (plus a second), or never. */
  overDeadline: LoadResult[];
  failed: number;
  faultAt: number;
  healAt: number;
}

export interface EpisodeOptions {
  name: string;
  apply: () => void;
  heal: () => void;
  durationMs: number;
  perSecond: number;
  deadlineMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function reason(line: string): string {
  try {
    const parsed = JSON.parse(line) as { retryInMs?: number };
    return String(parsed.retryInMs ?? '');
  } catch {
    return /retryInMs[=:]"?(\d+)/.exec(line)?.[1] ?? '';
  }
}

export async function runFaultEpisode(
  d: Deployment,
  options: EpisodeOptions,
): Promise<EpisodeFigures> {
  const load = new Load(d.scraper, options.perSecond, options.deadlineMs);
  load.start();
  await sleep(2000);
  const clientFrom = d.client.lines().length;
  const faultAt = Date.now();
  options.apply();
  let proxyDroppedAt: number | undefined;
  let clientNoticedAt: number | undefined;
  const watchProxy = d
    .waitForNoTunnel(options.durationMs)
    .then(() => {
      proxyDroppedAt = Date.now();
    })
    .catch(() => {});
  const watchClient = d.client
    .waitForLine(/tunnel down, reconnecting/, options.durationMs, clientFrom)
    .then(() => {
      clientNoticedAt = Date.now();
    })
    .catch(() => {});
  await sleep(options.durationMs);
  await Promise.all([watchProxy, watchClient]);
  const downLines = d.client.lines().slice(clientFrom).filter((l) => /tunnel down, reconnecting/.test(l)); // prettier-ignore
  const healAt = Date.now();
  options.heal();
  await d.client.waitForLine(/tunnel connected/, 20_000, clientFrom);
  await poll100(async () => {
    const listed = (await d.scraper.clients()).filter((c) => c.names.includes(CLIENT_NAME));
    return listed.length === 1 && new Date(listed[0]!.connectedAt).getTime() > faultAt;
  }, 20_000);
  const backAt = Date.now();
  await sleep(2000);
  const results = await load.stop();
  const downFrom = proxyDroppedAt ?? Number.POSITIVE_INFINITY;
  const whileDownResults = results.filter((r) => r.sentAt >= downFrom && r.sentAt + 500 < healAt);
  const quick503 = whileDownResults.filter((r) => r.status === 503 && r.headMs < 1000).length;
  return {
    proxyDroppedMs: proxyDroppedAt === undefined ? undefined : proxyDroppedAt - faultAt,
    clientNoticedMs: clientNoticedAt === undefined ? undefined : clientNoticedAt - faultAt,
    redials: downLines.length,
    retryDelaysMs: downLines.map(reason).map(Number),
    backAfterHealMs: backAt - healAt,
    results,
    whileDown: whileDownResults.length,
    quick503,
    slowestDownHeadMs: Math.max(0, ...whileDownResults.map((r) => r.headMs)),
    overDeadline: results.filter((r) => r.outcome === 'hung' || r.totalMs > r.deadlineMs + 1000),
    failed: results.filter((r) => !(r.status === 200 && r.outcome === 'complete')).length,
    faultAt,
    healAt,
  };
}

async function poll100(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // the proxy may be restarting
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** One "figure:" line per measured value, for the test output and docs/reliability.md. */
export function printFigures(name: string, f: EpisodeFigures): void {
  const fmt = (ms: number | undefined): string => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`); // prettier-ignore
  const lines = [
    `proxy dropped the tunnel after ${fmt(f.proxyDroppedMs)}`,
    `client noticed after ${fmt(f.clientNoticedMs)}`,
    `client redialed ${f.redials} times while down (delays ${f.retryDelaysMs.join(', ')} ms)`,
    `tunnel back ${fmt(f.backAfterHealMs)} after the link healed`,
    `scrapes sent while the tunnel was down: ${f.whileDown}, answered 503 within 1 s: ${f.quick503} (slowest head ${f.slowestDownHeadMs} ms)`,
    `scrapes: ${f.results.length} sent, ${f.failed} not a complete 200, ${f.overDeadline.length} past their deadline`,
  ];
  for (const line of lines) console.log(`figure: ${name}: ${line}`);
}

/**
 * A scrape that ended cleanly: a whole 200, natprox's own error answer, a body cut off that
 * the scraper tells from a whole one, or a refused connection (the proxy restarting).
 */
export function endedCleanly(r: LoadResult): boolean {
  if (r.outcome === 'hung') return false;
  if (r.status === 200) return r.outcome === 'complete' || r.outcome === 'cut';
  if (r.status >= 400) return r.natproxError !== undefined;
  return r.status === 0 && r.outcome === 'error';
}
