import { realClock, sleep, type Clock } from '../../util/clock.js';
import type { DialOptions, TunnelConnection } from './tunnel-dialer.js';
import type { BackoffOptions } from '../backoff.js';
import type { ClientEvents, ConnectionState } from '../client-events.js';
import type { TunnelName } from '../proxy-endpoint.js';
import { ReconnectLoop, type AttemptControl } from '../reconnect-loop.js';

export interface NativeTransportOptions {
  /** Opens the tunnel; rejects with the signal's reason once it aborts (stop()). */
  dial: (signal: AbortSignal) => Promise<TunnelConnection>;
  events: ClientEvents;
  backoff: BackoffOptions;
  /** A connection that stayed up this long resets the backoff. */
  resetBackoffAfterMs: number;
  /** Which tunnel this is, for the state events (metrics and logs name it). */
  tunnel?: TunnelName;
  clock?: Clock;
}

const UNNAMED: TunnelName = { proxy: 'proxy' };

export type { DialOptions };

/**
 * Keeps one native tunnel up: dial, serve until it drops, and again after a delay
 * (ReconnectLoop decides when, and announces the state).
 */
export class NativeClientTransport {
  private current: TunnelConnection | undefined;
  private readonly loop: ReconnectLoop;
  private readonly clock: Clock;

  constructor(private readonly options: NativeTransportOptions) {
    this.clock = options.clock ?? realClock;
    this.loop = new ReconnectLoop({
      attempt: (control) => this.dialAndServe(control),
      events: options.events,
      backoff: options.backoff,
      resetBackoffAfterMs: options.resetBackoffAfterMs,
      tunnel: options.tunnel ?? UNNAMED,
      clock: this.clock,
    });
  }

  get state(): ConnectionState {
    return this.loop.state;
  }

  get connection(): TunnelConnection | undefined {
    return this.current;
  }

  start(): void {
    this.loop.start();
  }

  /** Stops reconnecting; GOAWAY lets in-flight scrapes finish; the returned promise waits for them. */
  stop(graceMs: number): Promise<void> {
    return this.loop.stop(async () => {
      const connection = this.current;
      if (!connection) return;
      connection.close();
      const timer = sleep(this.clock, graceMs, undefined, { ref: false }).then(() => 'timeout');
      // Wait for the connection itself, not just GOAWAY: scrapes in flight finish first.
      if ((await Promise.race([connection.finished, timer])) === 'timeout') connection.destroy();
    });
  }

  private async dialAndServe(control: AttemptControl): Promise<string> {
    const connection = await this.options.dial(control.signal);
    if (control.signal.aborted) {
      // A dial that finished as the client stopped: nobody will serve this tunnel.
      connection.destroy();
      throw control.signal.reason;
    }
    this.current = connection;
    control.up();
    try {
      return await connection.closed;
    } finally {
      this.current = undefined;
    }
  }
}
