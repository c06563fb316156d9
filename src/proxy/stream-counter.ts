import type { ClientSession } from './client-session.js';

/**
 * Streams in flight, per client session and in total: scrapes and CONNECT tunnels share the
 * per-client limit, so one busy scraper cannot starve a client's other scrapes forever.
 */
export class StreamCounter {
  private readonly perSession = new WeakMap<ClientSession, number>();
  private total = 0;

  get active(): number {
    return this.total;
  }

  /** Takes a slot, or returns undefined when `session` is at `limit`. The release is idempotent. */
  acquire(session: ClientSession, limit: number): (() => void) | undefined {
    const current = this.perSession.get(session) ?? 0;
    if (current >= limit) return undefined;
    this.perSession.set(session, current + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      this.perSession.set(session, (this.perSession.get(session) ?? 1) - 1);
    };
  }
}
