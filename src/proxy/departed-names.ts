/** How long a name is remembered after its last client left, and how many such names. */
export interface DepartedRetention {
  retentionMs: number;
  maxNames: number;
  now: () => number;
}

/**
 * An hour: long enough for a client that reconnects to find its counters and its /clients
 * entry again and for dashboards over the last hour to show one that left; bounded in
 * count, so made-up names cannot grow it.
 */
export const DEFAULT_DEPARTED_RETENTION: DepartedRetention = {
  retentionMs: 60 * 60_000,
  maxNames: 1000,
  now: Date.now,
};

/** Names no client serves any more, each with what is kept of it; oldest departure first. */
export class DepartedNames<T> {
  private readonly entries = new Map<string, { leftAt: number; value: T }>();

  constructor(
    private readonly retention: DepartedRetention,
    /** Called for each name forgotten for its age or the count. */
    private readonly onForget: (name: string) => void = () => {},
  ) {}

  /** The name's last client left now. */
  add(name: string, value: T): void {
    // Re-inserted, so the map stays ordered by departure.
    this.entries.delete(name);
    this.entries.set(name, { leftAt: this.retention.now(), value });
    this.prune();
  }

  /** A client serves the name again. */
  delete(name: string): void {
    this.entries.delete(name);
  }

  /** What is kept of each departed name, oldest departure first. */
  values(): Array<[name: string, value: T]> {
    this.prune();
    return [...this.entries].map(([name, entry]) => [name, entry.value]);
  }

  prune(): void {
    const oldest = this.retention.now() - this.retention.retentionMs;
    for (const [name, { leftAt }] of this.entries) {
      if (leftAt > oldest && this.entries.size <= this.retention.maxNames) break;
      this.entries.delete(name);
      this.onForget(name);
    }
  }
}
