/** One scrape through the proxy, sent from the harness itself, with the moments it ended. */
import http from 'node:http';

export interface SingleScrape {
  /** Resolves with the status once response headers arrive. */
  headers: Promise<number>;
  /** Resolves when the response is over: complete, cut off, or failed; with performance.now(). */
  ended: Promise<{ at: number; status: number; complete: boolean; error?: string }>;
  abort(): void;
}

export function scrapeThroughProxy(
  proxyPort: number,
  authority: string,
  path: string,
  timeoutSeconds = 30,
): SingleScrape {
  const req = http.request({
    host: '127.0.0.1',
    port: proxyPort,
    method: 'GET',
    path: `http://${authority}${path}`,
    headers: {
      host: authority,
      'x-prometheus-scrape-timeout-seconds': String(timeoutSeconds),
    },
    agent: false,
    timeout: (timeoutSeconds + 5) * 1000,
  });
  let status = 0;
  let resolveHeaders: (status: number) => void = () => {};
  let rejectHeaders: (err: Error) => void = () => {};
  const headers = new Promise<number>((resolve, reject) => {
    resolveHeaders = resolve;
    rejectHeaders = reject;
  });
  headers.catch(() => {});
  const ended = new Promise<{ at: number; status: number; complete: boolean; error?: string }>(
    (resolve) => {
      let done = false;
      const end = (complete: boolean, error?: string): void => {
        if (done) return;
        done = true;
        resolve({ at: performance.now(), status, complete, ...(error ? { error } : {}) });
      };
      req.once('timeout', () => req.destroy(new Error('no answer in time')));
      req.once('error', (err) => {
        rejectHeaders(err);
        end(false, err.message);
      });
      req.once('response', (res) => {
        status = res.statusCode ?? 0;
        resolveHeaders(status);
        res.resume();
        res.once('end', () => end(true));
        res.once('aborted', () => end(false, 'aborted'));
        res.once('error', (err) => end(false, err.message));
        res.once('close', () => end(res.complete, res.complete ? undefined : 'closed'));
      });
    },
  );
  req.end();
  return { headers, ended, abort: () => req.destroy() };
}
