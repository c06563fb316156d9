import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import type { DialOptions, TunnelConnection } from '../tunnel/tunnel-dialer.js';
import { Backoff, failureKind, type BackoffOptions, type FailureKind } from './backoff.js';
import type { ClientEvents, ConnectionState } from './client-events.js';
import type { TunnelName } from './proxy-endpoint.js';

export interface ConnectorOptions {
  dial: () => Promise<TunnelConnection>;
  events: ClientEvents;
  backoff: BackoffOptions;
  /** A connection that stayed up this long resets the backoff. */
  resetBackoffAfterMs: number;
  /** Which tunnel this is, for the state events (metrics and logs name it). */
  tunnel?: TunnelName;
}

const UNNAMED: TunnelName = { proxy: 'proxy' };
/** A failed dial that took this long counts its time against the next delay. */
const SPENT_DIALING_MS = 100;

export type { DialOptions };

/**
 * Keeps one tunnel up forever: dial, serve until it drops, wait a jittered exponential
 * delay, dial again. The state is always one of ConnectionState and is announced on change.
 */
export class Connector {
  private current: TunnelConnection | undefined;
  private stopped = new AbortController();
  private loop: Promise<void> | undefined;
  private stateValue: ConnectionState = { state: 'connecting', attempt: 1 };

  constructor(private readonly options: ConnectorOptions) {}

  get state(): ConnectionState {
    return this.stateValue;
  }

  get connection(): TunnelConnection | undefined {
    return this.current;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops reconnecting; GOAWAY lets in-flight scrapes finish; the returned promise waits for them. */
  async stop(graceMs: number): Promise<void> {
    this.stopped.abort();
    const connection = this.current;
    if (connection) {
      connection.close();
      const timer = sleep(graceMs, 'timeout', { ref: false });
      // Wait for the connection itself, not just GOAWAY: scrapes in flight finish first.
      if ((await Promise.race([connection.finished, timer])) === 'timeout') connection.destroy();
    }
    await this.loop;
    this.setState({ state: 'closed' });
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    let attempt = 1;
    while (!this.stopped.signal.aborted) {
      this.setState({ state: 'connecting', attempt });
      let lastError: string;
      // A tunnel that was up and dropped: the proxy went away or the link broke.
      let kind: FailureKind = 'unreachable';
      // A dial that failed after waiting (no answer on a dead link) has spent part of its
      // backoff already; see the wait below.
      let dialStartedAt: number | undefined = Date.now();
      try {
        const connection = await this.options.dial();
        if (this.stopped.signal.aborted) {
          connection.destroy();
          return;
        }
        this.current = connection;
        dialStartedAt = undefined;
        const since = new Date();
        this.setState({ state: 'connected', since });
        attempt = 1;
        lastError = await connection.closed;
        this.current = undefined;
        if (Date.now() - since.getTime() >= this.options.resetBackoffAfterMs) backoff.reset();
      } catch (err) {
        lastError = errorMessage(err);
        kind = failureKind(err);
        attempt += 1;
      }
      if (this.stopped.signal.aborted) return;
      // The delay counts from the start of a failed attempt: one that hung until its
      // timeout (SYNs dropped without a word) goes again at once, so a link that heals is
      // used within one SYN retransmission, not a timeout plus a backoff later.
      // A dial refused at once waits its whole delay, as before.
      const planned = backoff.next(kind);
      const spentMs = dialStartedAt === undefined ? 0 : Date.now() - dialStartedAt;
      const delayMs = spentMs >= SPENT_DIALING_MS ? Math.max(0, planned - spentMs) : planned;
      this.setState({ state: 'reconnecting', attempt, delayMs, lastError });
      try {
        await sleep(delayMs, undefined, { signal: this.stopped.signal });
      } catch {
        return;
      }
    }
  }

  private setState(state: ConnectionState): void {
    this.stateValue = state;
    this.options.events.emit('state', state, this.options.tunnel ?? UNNAMED);
  }
}
