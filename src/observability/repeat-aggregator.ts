/**
 * Turns a stream of repeated log events into few lines: the first event of a kind is
 * written at once, the repeats within the interval are counted and written as one line with
 * `count` when the interval ends. A peer that sends thousands of refused requests a second
 * then costs one line per kind per interval instead of one per request.
 */
export class RepeatAggregator<Fields extends object> {
  /** Per kind: repeats this interval, and the fields of the latest (built when written). */
  private readonly open = new Map<string, { repeats: number; latest: () => Fields }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (
      fields: Fields,
      repeated: { count: number; intervalMs: number } | undefined,
    ) => void,
    private readonly intervalMs: number,
    /** Kinds tracked at once; beyond it, repeats of a new kind share one overflow kind. */
    private readonly maxKinds = 64,
  ) {}

  record(kind: string, fields: () => Fields): void {
    const key = this.open.has(kind) || this.open.size < this.maxKinds ? kind : OVERFLOW;
    const entry = this.open.get(key);
    if (entry) {
      entry.repeats += 1;
      entry.latest = fields;
      return;
    }
    this.open.set(key, { repeats: 0, latest: fields });
    this.write(fields(), undefined);
    this.timer ??= setInterval(() => this.flush(), this.intervalMs).unref();
  }

  /** Writes the counts of the interval that ended; kinds with no repeats are forgotten. */
  flush(): void {
    for (const [key, entry] of this.open) {
      if (entry.repeats === 0) {
        this.open.delete(key);
        continue;
      }
      this.write(entry.latest(), { count: entry.repeats, intervalMs: this.intervalMs });
      entry.repeats = 0;
    }
    if (this.open.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

const OVERFLOW = '\0overflow';
