import type { ClientRequest, IncomingMessage } from 'node:http';
import type { ClientEvents, ServeOutcome } from '../client-events.js';
import type { LocalTargets } from '../local-targets.js';
import type { LocalFetch, TargetResponse } from '../local-scrape.js';
import { FAILURES, type ClientRefusalCode } from '../../wire/failures.js';
import { NatproxError } from '../../errors.js';
import {
  CLIENT_ANSWER_PREFIX,
  ERROR_CODE_HEADER,
  INTERNAL_HEADER_PREFIX,
} from '../../wire/protocol.js';
import { contentLength, endToEndHeaders } from '../../util/headers.js';
import { readLimited } from '../../util/read-limited.js';
import type { ProxyHttp } from './proxy-http.js';
import type { PolledRequest } from '../../wire/pushprox/request-reader.js';
import { ChunkEncoder, writeResponseHead } from '../../wire/pushprox/response-writer.js';
import { ID_HEADER } from '../../wire/pushprox/wire-format.js';
import { servedReporter } from '../served-reporter.js';

/** Used when the proxy sent no timeout header: generous but finite. */
const FALLBACK_DEADLINE_MS = 60_000;
/** Longest part of the proxy's answer to a push kept for the log. */
const MAX_ANSWER_TEXT = 300;

/**
 * Serves one scrape that arrived in a poll answer: the same name and allowlist checks and
 * local fetch as native scrapes (LocalTargets), then the result pushed to the proxy as a
 * serialised HTTP/1.1 response, its body streamed (chunked). natprox's own refusals go out
 * with their real status (403, 502, 504) and reason, which a PushProx proxy passes on.
 */
export class PushExecutor {
  constructor(
    private readonly targets: LocalTargets,
    private readonly proxy: ProxyHttp,
    private readonly events: ClientEvents,
  ) {}

  /** Aborts local fetches still running and closes local connections. */
  close(): void {
    this.targets.close();
  }

  /** Resolves once the result is pushed, or the push failed (reported, never thrown). */
  run(request: PolledRequest): Promise<void> {
    const deadlineMs = request.timeoutMs ?? FALLBACK_DEADLINE_MS;
    const deadlineAt = Date.now() + deadlineMs;
    const { url } = request;
    const name = url.hostname.toLowerCase();
    const port = url.port === '' ? 80 : Number(url.port);
    let bytes = 0;
    return new Promise<void>((resolve) => {
      const report = servedReporter(
        this.events,
        { name, port, path: url.pathname },
        () => bytes,
        resolve,
      );
      const remainingSeconds = (): number => (deadlineAt - Date.now()) / 1000;
      /** Sends the push and reports `outcome` once the proxy took it. */
      const awaitPush = (
        push: ClientRequest,
        outcome: ServeOutcome,
        status: number,
        reason?: string,
      ) => {
        push.setTimeout(Math.max(1000, deadlineAt - Date.now() + 1000), () =>
          push.destroy(
            new NatproxError('NATPROX_TUNNEL_FAILED', 'the proxy did not take the push in time'),
          ),
        );
        push.once('error', (err) => report('push_failed', status, `push failed: ${err.message}`));
        push.once('response', (answer: IncomingMessage) => {
          readText(answer).then(
            (text) => {
              const code = answer.statusCode ?? 0;
              if (code >= 200 && code < 300) report(outcome, status, reason);
              else
                report(
                  'push_failed',
                  status,
                  `the proxy answered the push with HTTP ${code}: ${text}`,
                );
            },
            () => report('push_failed', status, 'the proxy answer to the push broke off'),
          );
        });
      };
      const pushRefusal = (code: ClientRefusalCode, reason: string, allow?: string): void => {
        const { status, client: outcome } = FAILURES[code];
        const body = Buffer.from(`${CLIENT_ANSWER_PREFIX}${reason}\n`);
        const head = writeResponseHead({
          status,
          headers: {
            'content-type': 'text/plain; charset=utf-8',
            [ERROR_CODE_HEADER]: code,
            ...(allow === undefined ? {} : { allow }),
          },
          id: request.id,
          remainingSeconds: remainingSeconds(),
          contentLength: body.length,
        });
        this.proxy.post('push', {}).then(
          (push) => {
            awaitPush(push, outcome, status, reason);
            push.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
          },
          (err: Error) => report('push_failed', status, `push failed: ${err.message}`),
        );
      };
      const pushResponse = (response: TargetResponse, fetch: LocalFetch): void => {
        const status = response.statusCode;
        const declaredLength = contentLength(response.headers['content-length']);
        const head = writeResponseHead({
          status,
          headers: endToEndHeaders(response.headers),
          id: request.id,
          remainingSeconds: remainingSeconds(),
          contentLength: declaredLength,
        });
        this.proxy.post('push', {}).then(
          (push) => {
            awaitPush(push, 'ok', status);
            push.write(head, 'latin1');
            const encoder = declaredLength === undefined ? new ChunkEncoder() : undefined;
            if (encoder) encoder.pipe(push);
            response.relay(
              encoder ?? push,
              {
                inspect: (chunk) => {
                  bytes += chunk.length;
                  return undefined;
                },
                // A body cut off must reach the proxy as a broken push, never as a short one.
                abortDestination: (err) => {
                  encoder?.destroy();
                  push.destroy(err);
                },
              },
              (err) => {
                if (!err) return;
                const outcome: ServeOutcome =
                  fetch.stopped === 'deadline' ? 'timeout' : 'target_error';
                report(outcome, status, `body cut off: ${err.message}`);
              },
            );
          },
          (err: Error) => {
            response.discard();
            report('push_failed', status, `push failed: ${err.message}`);
          },
        );
      };

      const fetch = this.targets.fetch(
        {
          name,
          port,
          method: request.method,
          pathAndQuery: `${url.pathname}${url.search}`,
          headers: withoutId(endToEndHeaders(request.headers, [INTERNAL_HEADER_PREFIX])),
          authority: url.host,
          deadlineMs,
          body: request.body,
        },
        {
          refused: pushRefusal,
          cancelled: () => report('cancelled', 0, 'the client is shutting down'),
          response: (response) => {
            if (fetch) pushResponse(response, fetch);
            else response.discard();
          },
        },
      );
    });
  }
}

function withoutId<T extends Record<string, unknown>>(headers: T): T {
  const copy = { ...headers };
  delete copy[ID_HEADER];
  return copy;
}

/** The start of the proxy's answer, read to its end so the connection can be used again. */
async function readText(answer: IncomingMessage): Promise<string> {
  const text = await readLimited(answer, MAX_ANSWER_TEXT, { onOver: 'truncate', rest: 'drain' });
  return text.toString('utf8').trim();
}
