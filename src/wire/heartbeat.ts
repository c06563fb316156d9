import type { Duplex } from 'node:stream';

/** Timer functions, injectable so tests can drive heartbeats with fake time. */
export interface Timers {
  setInterval(fn: () => void, ms: number): { unref?(): unknown };
  clearInterval(handle: unknown): void;
}

export const realTimers: Timers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export interface HeartbeatOptions {
  intervalMs: number;
  /** Ticks in a row without an answer after which the peer is declared dead. */
  maxMissed: number;
  /**
   * Leave the pinging to the peer: ping only after a whole interval without any sign of
   * life. The proxy runs passive, so the many clients pay for the pings of their idle
   * tunnels and the one proxy only answers them (its answers are sent without JavaScript).
   */
  passive?: boolean;
  /**
   * Bytes reported by `receivedSinceLastAsked` prove the peer alive but do not skip the next
   * ping: the client's pings are the passive proxy's sign of life, and the answers to them
   * arrive as bytes too.
   */
  pingWhileReceiving?: boolean;
  timers?: Timers;
}

/** Defaults: a peer that stops answering is declared dead within 3 x 4 s = 12 s. */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 4000, maxMissed: 2 };

/**
 * Checks the peer every interval; it is dead when `maxMissed` ticks in a row pass with no
 * pong and no other sign of life reported through `alive()`. A tick pings only when the
 * last interval brought no traffic: with thousands of tunnels, busy ones need no pings.
 * Knows nothing of sockets: `ping` sends one and calls back when it is answered.
 */
export class Heartbeat {
  private missed = 0;
  private answeredSinceTick = true;
  private trafficSinceTick = false;
  private handle: unknown;

  constructor(
    private readonly ping: (onPong: () => void) => void,
    private readonly onDead: (silentMs: number) => void,
    private readonly options: HeartbeatOptions = DEFAULT_HEARTBEAT,
    /**
     * Asked at each tick whether anything arrived since the last tick: cheaper than
     * reporting every arrival through alive() when a byte counter can answer it.
     */
    private readonly receivedSinceLastAsked?: () => boolean,
  ) {}

  start(): void {
    const timers = this.options.timers ?? realTimers;
    const handle = timers.setInterval(() => this.tick(), this.options.intervalMs);
    handle.unref?.();
    this.handle = handle;
  }

  /** Any traffic from the peer proves it is alive. */
  alive(): void {
    this.answeredSinceTick = true;
    this.trafficSinceTick = true;
  }

  stop(): void {
    if (this.handle !== undefined) (this.options.timers ?? realTimers).clearInterval(this.handle);
    this.handle = undefined;
  }

  private tick(): void {
    if (this.receivedSinceLastAsked?.()) {
      if (this.options.pingWhileReceiving === true) this.answeredSinceTick = true;
      else this.alive();
    }
    if (this.answeredSinceTick) {
      this.missed = 0;
    } else {
      this.missed += 1;
      if (this.missed >= this.options.maxMissed) {
        this.stop();
        this.onDead(this.missed * this.options.intervalMs);
        return;
      }
    }
    this.answeredSinceTick = false;
    const skip = this.trafficSinceTick || (this.options.passive === true && this.missed === 0);
    this.trafficSinceTick = false;
    if (!skip) this.ping(() => this.onPong());
  }

  private onPong(): void {
    this.answeredSinceTick = true;
  }
}

/**
 * Whether the socket received bytes since the last call: any frame from the peer proves it
 * alive, with no JavaScript run per frame. On the proxy: the client's pings, the answers to
 * ours and scrape bodies. On the client: the proxy's WINDOW_UPDATEs while a body uploads,
 * since a ping queued behind megabytes on a slow uplink may take longer than the timeout.
 */
export function bytesArrived(socket: Duplex): () => boolean {
  const counted = socket as Duplex & { bytesRead?: number };
  let seen = counted.bytesRead ?? 0;
  return () => {
    const now = counted.bytesRead ?? 0;
    const arrived = now !== seen;
    seen = now;
    return arrived;
  };
}
