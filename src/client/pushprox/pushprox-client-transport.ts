import type { ClientRequest, IncomingMessage } from 'node:http';
import { realClock, sleep, type Clock, type ClockTimer } from '../../util/clock.js';
import type { BackoffOptions } from '../backoff.js';
import type { ClientEvents, ConnectionState } from '../client-events.js';
import type { ClientTransport } from '../client-transport.js';
import type { TunnelName } from '../proxy-endpoint.js';
import { ReconnectLoop, type AttemptControl } from '../reconnect-loop.js';
import { errorMessage, NatproxError } from '../../errors.js';
import { readLimited } from '../../util/read-limited.js';
import type { PushExecutor } from './push-executor.js';
import type { ProxyHttp } from './proxy-http.js';
import { readPolledRequest, type PolledRequest } from '../../wire/pushprox/request-reader.js';
import { MAX_HEAD_BYTES, MAX_POLLED_BODY_BYTES } from '../../wire/pushprox/wire-format.js';

export interface PushProxTransportOptions {
  /** The FQDN polled with: the name scrapes address. */
  name: string;
  proxy: ProxyHttp;
  executor: PushExecutor;
  events: ClientEvents;
  backoff: BackoffOptions;
  /** The proxy, as state events name it. */
  tunnel: TunnelName;
  /**
   * A poll gets no answer until there is a scrape; one the proxy has held this long without
   * refusing it counts as accepted, and the client as connected.
   */
  acceptedAfterMs?: number;
  clock?: Clock;
}

const DEFAULT_ACCEPTED_AFTER_MS = 500;
/** Longest part of a refused poll's answer kept for the log. */
const MAX_REFUSAL_TEXT = 200;

/**
 * The client side of PushProx: keeps exactly one poll outstanding (a PushProx proxy answers
 * an older waiting poll for the same name with 408 when a newer one arrives, so two would
 * knock each other out), re-polls the moment a scrape arrives while the scrape runs in the
 * background, and backs off on errors. A poll's status is checked before its body is read
 * as a request: a load balancer's HTML 504 is logged and retried, never parsed.
 */
export class PushProxClientTransport implements ClientTransport {
  private readonly loop: ReconnectLoop;
  private readonly clock: Clock;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: PushProxTransportOptions) {
    this.clock = options.clock ?? realClock;
    this.loop = new ReconnectLoop({
      attempt: (control) => this.pollUntilRefused(control),
      events: options.events,
      backoff: options.backoff,
      tunnel: options.tunnel,
      clock: this.clock,
    });
  }

  get state(): ConnectionState {
    return this.loop.state;
  }

  /** Scrapes being served now. */
  get activeScrapes(): number {
    return this.inFlight.size;
  }

  start(): void {
    this.loop.start();
  }

  stop(graceMs: number): Promise<void> {
    return this.loop.stop(async () => {
      // The loop first: a poll that brought a scrape as it stopped adds it to inFlight.
      await this.loop.ended;
      const all = Promise.all([...this.inFlight]);
      await Promise.race([all, sleep(this.clock, graceMs, undefined, { ref: false })]);
      this.options.executor.close();
      this.options.proxy.close();
    });
  }

  /**
   * Polls, runs each scrape a poll brings in the background and polls again at once, until
   * a poll fails: the loop waits its delay then.
   */
  private async pollUntilRefused(control: AttemptControl): Promise<string> {
    for (;;) {
      const request = await this.poll(control);
      control.resetBackoff();
      control.up();
      const job: Promise<void> = this.options.executor
        .run(request)
        .finally(() => this.inFlight.delete(job));
      this.inFlight.add(job);
      if (control.signal.aborted) throw control.signal.reason;
    }
  }

  /** One poll: resolves with the scrape it brought, rejects with what went wrong. */
  private async poll(control: AttemptControl): Promise<PolledRequest> {
    const where = this.options.proxy.urlOf('poll').href;
    let req: ClientRequest;
    try {
      req = await this.options.proxy.post(
        'poll',
        { 'content-type': 'text/plain; charset=utf-8' },
        control.signal,
      );
    } catch (err) {
      throw new NatproxError(
        'NATPROX_TUNNEL_FAILED',
        `poll to ${where} failed: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
    return new Promise((resolve, reject) => {
      const signal = control.signal;
      let acceptedTimer: ClockTimer | undefined;
      const onStop = (): void => {
        req.destroy();
      };
      const settle = (): void => {
        this.clock.clearTimeout(acceptedTimer);
        signal.removeEventListener('abort', onStop);
      };
      signal.addEventListener('abort', onStop, { once: true });
      req.once('finish', () => {
        acceptedTimer = this.clock.setTimeout(
          () => control.connected(),
          this.options.acceptedAfterMs ?? DEFAULT_ACCEPTED_AFTER_MS,
        );
        acceptedTimer.unref?.();
      });
      req.once('error', (err) => {
        settle();
        reject(
          new NatproxError('NATPROX_TUNNEL_FAILED', `poll to ${where} failed: ${err.message}`, {
            cause: err,
          }),
        );
      });
      req.once('response', (res: IncomingMessage) => {
        // An error page is read only in part, to say what it was.
        // A scrape is a head, with a body for a POST (remote read).
        const limit =
          res.statusCode === 200 ? MAX_HEAD_BYTES + MAX_POLLED_BODY_BYTES : MAX_HEAD_BYTES;
        readLimited(res, limit, {
          onOver: res.statusCode === 200 ? 'reject' : 'truncate',
          what: 'the poll answer',
        }).then(
          (body) => {
            settle();
            if (res.statusCode !== 200) {
              reject(pollRefused(where, res, body));
              return;
            }
            const request = readPolledRequest(body);
            if (typeof request === 'string') {
              reject(new NatproxError('NATPROX_TUNNEL_FAILED', `poll to ${where}: ${request}`));
              return;
            }
            resolve(request);
          },
          (err: Error) => {
            settle();
            const hint =
              err instanceof NatproxError && err.code === 'NATPROX_BODY_TOO_LARGE'
                ? '; a scrape request (with its body) is smaller'
                : '';
            reject(
              new NatproxError('NATPROX_TUNNEL_FAILED', `poll to ${where}: ${err.message}${hint}`),
            );
          },
        );
      });
      req.end(this.options.name);
    });
  }
}

/** Why a poll was answered with something other than a scrape, with what to check. */
function pollRefused(where: string, res: IncomingMessage, body: Buffer): NatproxError {
  const status = res.statusCode ?? 0;
  const type = String(res.headers['content-type'] ?? 'no content type');
  const text = body
    .toString('utf8')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_REFUSAL_TEXT);
  const hint =
    status === 408
      ? ' (the proxy took a newer poll for this name: is another client polling with the same --name?)'
      : status === 401 || status === 403
        ? ' (check --token-file, or the user info in --proxy-url)'
        : status === 502 || status === 504
          ? ' (an intermediary cut the poll off; a load balancer idle timeout shorter than the wait for a scrape does this)'
          : '';
  return new NatproxError(
    'NATPROX_TUNNEL_FAILED',
    `poll to ${where} answered HTTP ${status} ${res.statusMessage ?? ''} (${type}): ${text || 'no body'}${hint}`,
    { httpStatus: status },
  );
}
