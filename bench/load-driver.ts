/**
 * The load generator, in its own process. It takes LoadJobs over IPC and answers with
 * LoadResults. Requests go over keep-alive http.Agent connections: absolute-form requests
 * (`GET http://NAME:PORT/path`, Host NAME:PORT) to the proxy, exactly as Prometheus sends
 * them with proxy_url, or plain requests to the target for the direct baseline.
 */
import http from 'node:http';
import { summarize, type LoadJob, type LoadResult } from './lib/load-types.js';

interface Outcome {
  ok: boolean;
  bytes: number;
  error?: string;
}

function requestOnce(
  agent: http.Agent,
  job: LoadJob,
  index: number,
  onDone: (outcome: Outcome) => void,
): void {
  const { route } = job;
  let options: http.RequestOptions;
  if (route.via === 'natprox') {
    const name = route.names[index % route.names.length] ?? 'missing';
    const authority = `${name}:${route.targetPort}`;
    options = {
      host: '127.0.0.1',
      port: route.proxyPort,
      path: `http://${authority}${route.path}`,
      headers: {
        host: authority,
        'x-prometheus-scrape-timeout-seconds': '30',
        ...route.headers,
      },
    };
  } else {
    options = {
      host: '127.0.0.1',
      port: route.targetPort,
      path: route.path,
      headers: { host: `127.0.0.1:${route.targetPort}` },
    };
  }
  let done = false;
  const finish = (outcome: Outcome): void => {
    if (done) return;
    done = true;
    onDone(outcome);
  };
  const req = http.request({ ...options, method: 'GET', agent, timeout: job.timeoutMs });
  req.once('timeout', () => req.destroy(new Error(`no answer within ${job.timeoutMs} ms`)));
  req.once('error', (err) => finish({ ok: false, bytes: 0, error: err.message }));
  req.once('response', (res) => {
    let bytes = 0;
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    res.once('error', (err) => finish({ ok: false, bytes, error: `body: ${err.message}` }));
    res.once('aborted', () => finish({ ok: false, bytes, error: 'body cut off' }));
    res.once('end', () => {
      if (res.statusCode === job.expectStatus) finish({ ok: true, bytes });
      else finish({ ok: false, bytes, error: `HTTP ${res.statusCode}` });
    });
  });
  req.end();
}

async function runJob(job: LoadJob): Promise<LoadResult> {
  const concurrency = job.concurrency ?? 1;
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: job.maxSockets ?? (job.mode === 'open' ? 256 : concurrency),
    maxFreeSockets: job.maxSockets ?? 256,
  });
  try {
    // Warm-up: opens the connections (and any lazily built state) before measuring.
    const warmup = job.warmup ?? 0;
    let warmIndex = 0;
    const warmErrors: string[] = [];
    await new Promise<void>((resolve) => {
      if (warmup === 0) {
        resolve();
        return;
      }
      let left = warmup;
      const worker = (): void => {
        if (warmIndex >= warmup) return;
        const index = warmIndex;
        warmIndex += 1;
        requestOnce(agent, job, index, (outcome) => {
          if (!outcome.ok && warmErrors.length < 5) warmErrors.push(outcome.error ?? '?');
          left -= 1;
          if (left === 0) resolve();
          else worker();
        });
      };
      for (let i = 0; i < Math.min(concurrency, warmup); i += 1) worker();
    });

    const limit = job.count ?? Number.POSITIVE_INFINITY;
    const durationMs = job.durationMs ?? Number.POSITIVE_INFINITY;
    const latencies: number[] = [];
    const errorSamples = [...warmErrors.map((e) => `warm-up: ${e}`)];
    let sent = 0;
    let ok = 0;
    let errors = 0;
    let bytes = 0;
    let inFlight = 0;
    let maxLagMs = 0;
    let skipped = 0;
    const maxInFlight = job.maxInFlight ?? Number.POSITIVE_INFINITY;
    const startedAt = performance.now();
    const expired = (): boolean => performance.now() - startedAt >= durationMs;

    await new Promise<void>((resolve) => {
      let stopped = false;
      const maybeResolve = (): void => {
        if (stopped && inFlight === 0) resolve();
      };
      const fire = (next: () => void): void => {
        const index = warmIndex + sent;
        sent += 1;
        inFlight += 1;
        const t0 = performance.now();
        requestOnce(agent, job, index, (outcome) => {
          inFlight -= 1;
          latencies.push(performance.now() - t0);
          bytes += outcome.bytes;
          if (outcome.ok) ok += 1;
          else {
            errors += 1;
            if (errorSamples.length < 10) errorSamples.push(outcome.error ?? '?');
          }
          next();
          maybeResolve();
        });
      };
      if (job.mode === 'closed') {
        const worker = (): void => {
          if (stopped) return;
          if (sent >= limit || expired()) {
            stopped = true;
            return;
          }
          fire(worker);
        };
        for (let i = 0; i < concurrency; i += 1) worker();
        maybeResolve();
      } else if (job.mode === 'paced') {
        // Each request at its own due time (no drift), a timer sleeping in between: the
        // processes on the route go idle between scrapes, as with Prometheus's cadence.
        const interval = job.intervalMs ?? 100;
        const firstAt = performance.now() + (job.startDelayMs ?? 0);
        const tick = (): void => {
          if (sent >= limit || performance.now() - startedAt >= durationMs) {
            stopped = true;
            maybeResolve();
            return;
          }
          fire(() => {});
          setTimeout(tick, Math.max(0, firstAt + sent * interval - performance.now()));
        };
        setTimeout(tick, Math.max(0, firstAt - performance.now()));
      } else {
        const rate = job.ratePerSec ?? 100;
        const tick = (): void => {
          const elapsed = performance.now() - startedAt;
          const due = Math.min(limit, Math.floor((elapsed * rate) / 1000) + 1);
          const behind = due - sent - skipped;
          if (behind > 1) maxLagMs = Math.max(maxLagMs, ((behind - 1) * 1000) / rate);
          while (sent + skipped < due && !(elapsed >= durationMs)) {
            if (inFlight >= maxInFlight) skipped += 1;
            else fire(() => {});
          }
          if (sent + skipped >= limit || elapsed >= durationMs) {
            stopped = true;
            maybeResolve();
            return;
          }
          setTimeout(tick, 1);
        };
        tick();
      }
    });
    const elapsedMs = performance.now() - startedAt;
    return {
      sent,
      ok,
      errors,
      errorSamples,
      bytes,
      elapsedMs,
      latency: summarize(latencies),
      maxLagMs,
      skipped,
      ...(job.keepSamples ? { samples: latencies } : {}),
    };
  } finally {
    agent.destroy();
  }
}

interface JobMessage {
  id: number;
  job: LoadJob;
}

process.on('message', (message: JobMessage) => {
  runJob(message.job).then(
    (result) => process.send?.({ id: message.id, result }),
    (err: unknown) => process.send?.({ id: message.id, error: String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
