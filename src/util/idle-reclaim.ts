import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { realClock, type Clock, type ClockTimer } from './clock.js';

const MiB = 1024 * 1024;
/** How long after a collection its effect on the resident size is read. */
const SETTLE_MS = 1000;

export interface IdleReclaimOptions {
  /** How long nothing must have happened before memory is given back. */
  quietMs?: number;
  /** Resident growth since the last collection that makes a collection worth its pause. */
  minGrowthBytes?: number;
  /** The least time between two collections, so a busy process pays at most this often. */
  minIntervalMs?: number;
  clock?: Clock;
  /** The process's resident memory in bytes (tests give their own). */
  residentBytes?: () => number;
  /** A garbage collection, full or of the young generation only (tests give their own). */
  collect?: (kind: CollectionKind) => void;
  /** Bytes held by array buffers, dead ones included until a collection (tests give their own). */
  bufferBytes?: () => number;
  /**
   * How long the quiet must last before a second collection shrinks a young generation that
   * a burst grew: V8 shrinks it only once its allocation rate, averaged over about 5 s, is low.
   */
  youngQuietMs?: number;
  /** The size of V8's young generation in bytes (tests give their own). */
  youngBytes?: () => number;
  /** Work still in flight (a collection would pause it): look again after another quiet spell. */
  busy?: () => boolean;
  /** Told about each collection, for the logs. */
  onReclaim?: (reclaim: Reclaimed) => void;
}

export interface Reclaimed {
  beforeBytes: number;
  afterBytes: number;
  pauseMs: number;
  /** Full, or the young generation's turn (the second of a quiet spell). */
  kind: CollectionKind;
}

/**
 * Gives memory back once the process has been quiet for a while after work.
 *
 * V8 collects garbage when JavaScript allocates, not when the process idles, and Node has no
 * idle-time collection: the buffers of the last scrapes (each socket read is its own
 * allocation outside the V8 heap) stay resident until later scrapes allocate enough to
 * start a collection. After twenty 5 MiB bodies that is 15-30 MiB held through the quiet
 * seconds between Prometheus's scrapes (bench/README.md). One full collection then pauses the
 * process for 20-50 ms on the 2-core bench machine, at most once per `minIntervalMs`, only
 * after real growth and only while buffers are held; waiting for 2 s of quiet keeps it
 * between scrapes, which Prometheus sends seconds apart.
 *
 * A burst also grows V8's young generation (up to 32 MiB), and V8 shrinks it in a
 * collection only when the allocation rate it averages over about 5 s is low; the first
 * collection comes too soon for that. So when the young generation is still large after it,
 * a collection of the young generation follows once the quiet has lasted `youngQuietMs`
 * (7 MiB more given back after the bench's load).
 */
export class IdleReclaim {
  private readonly quietMs: number;
  private readonly minGrowthBytes: number;
  private readonly minIntervalMs: number;
  private readonly clock: Clock;
  private readonly residentBytes: () => number;
  private readonly collect: (kind: CollectionKind) => void;
  private readonly bufferBytes: () => number;
  private readonly onReclaim: ((reclaim: Reclaimed) => void) | undefined;
  private readonly busy: () => boolean;
  private readonly youngQuietMs: number;
  private readonly youngBytes: () => number;
  private readonly youngBaselineBytes: number;
  /** The young generation stayed large after a collection: shrink it once quiet enough. */
  private youngPending = false;
  private lastActivityAt: number;
  private lastCollectedAt = Number.NEGATIVE_INFINITY;
  private baselineBytes: number;
  private timer: ClockTimer | undefined = undefined;
  private settleTimer: ClockTimer | undefined = undefined;
  private stopped = false;

  constructor(options: IdleReclaimOptions = {}) {
    this.quietMs = options.quietMs ?? 2000;
    this.minGrowthBytes = options.minGrowthBytes ?? 8 * MiB;
    this.minIntervalMs = options.minIntervalMs ?? 10_000;
    this.clock = options.clock ?? realClock;
    this.residentBytes = options.residentBytes ?? process.memoryUsage.rss;
    this.collect = options.collect ?? v8Collection();
    this.bufferBytes = options.bufferBytes ?? (() => process.memoryUsage().arrayBuffers);
    this.onReclaim = options.onReclaim;
    this.busy = options.busy ?? (() => false);
    this.youngQuietMs = options.youngQuietMs ?? 6500;
    this.youngBytes = options.youngBytes ?? youngGenerationBytes;
    this.youngBaselineBytes = this.youngBytes();
    this.lastActivityAt = this.clock.now();
    this.baselineBytes = this.residentBytes();
  }

  /** Something happened (a scrape ended): look again once it has been quiet for a while. */
  activity(): void {
    // One timestamp per call: this runs for every scrape. The timer is armed at most once.
    this.lastActivityAt = this.clock.now();
    if (this.timer === undefined && !this.stopped) this.arm(this.quietMs);
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.settleTimer);
    this.timer = undefined;
    this.settleTimer = undefined;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(this.check, ms);
    this.timer.unref?.();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    const quietFor = now - this.lastActivityAt;
    if (quietFor < this.quietMs) {
      this.arm(this.quietMs - quietFor);
      return;
    }
    if (this.busy()) {
      this.arm(this.quietMs);
      return;
    }
    if (this.youngPending && quietFor >= this.youngQuietMs) {
      this.youngPending = false;
      this.run('young', this.residentBytes());
      return;
    }
    // Until the young generation's turn, a new burst's growth is still collected as usual.
    const youngIn = this.youngPending ? this.youngQuietMs - quietFor : Number.POSITIVE_INFINITY;
    const sinceLast = now - this.lastCollectedAt;
    if (sinceLast < this.minIntervalMs) {
      this.arm(Math.min(this.minIntervalMs - sinceLast, youngIn));
      return;
    }
    const residentBytes = this.residentBytes();
    if (residentBytes - this.baselineBytes >= this.minGrowthBytes) {
      // Only buffers are worth a full collection: it also makes V8 drop optimized code that
      // held objects it freed, and the next burst re-optimizes (bench/README.md). Growth
      // without them is V8's grown heap, which the young generation's turn gives back.
      if (this.bufferBytes() >= MIN_BUFFER_BYTES) this.run('full', residentBytes);
      this.youngPending = this.youngBytes() >= this.youngBaselineBytes + YOUNG_GROWN_BYTES;
      if (this.youngPending) this.arm(this.youngQuietMs - quietFor);
    } else if (this.youngPending) {
      this.arm(youngIn);
    }
  };

  private run(kind: CollectionKind, beforeBytes: number): void {
    const started = performance.now();
    this.collect(kind);
    const pauseMs = performance.now() - started;
    this.lastCollectedAt = this.clock.now();
    // V8 frees array buffers' memory on a background thread after the collection: read the
    // resident size that is the next baseline a moment later.
    this.clock.clearTimeout(this.settleTimer);
    this.settleTimer = this.clock.setTimeout(() => {
      this.settleTimer = undefined;
      this.baselineBytes = this.residentBytes();
      this.onReclaim?.({ beforeBytes, afterBytes: this.baselineBytes, pauseMs, kind });
    }, SETTLE_MS);
    this.settleTimer.unref?.();
  }
}

export type CollectionKind = 'full' | 'young';

/** Buffers held (a burst's socket reads, mostly dead) that are worth a full collection. */
const MIN_BUFFER_BYTES = 4 * MiB;

/** Young-generation growth that is worth a second collection's pause. */
const YOUNG_GROWN_BYTES = 4 * MiB;

function youngGenerationBytes(): number {
  let bytes = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space' || space.space_name === 'new_large_object_space') {
      bytes += space.space_size;
    }
  }
  return bytes;
}

/**
 * V8's `gc` function, fetched into a fresh context: `--expose-gc` only installs it in contexts
 * created while the flag is set, and it is turned off again at once, so nothing else in the
 * process sees it.
 *
 * A full collection frees the buffers of a burst of scrapes (their objects outlive the young
 * generation while a body streams); the young generation's turn is a scavenge, which shrinks
 * it as well as a full collection does (110 -> 104 MiB, 72 -> 65 MiB after the bench's load)
 * without the full one's price in re-optimized code.
 */
export function v8Collection(): (kind: CollectionKind) => void {
  let gc: ((options?: { type: 'minor' }) => void) | undefined;
  return (kind) => {
    if (gc === undefined) {
      setFlagsFromString('--expose-gc');
      try {
        gc = runInNewContext('gc') as (options?: { type: 'minor' }) => void;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
    // No argument for a full one: this V8 (Node 20) collects next to nothing when gc() is
    // given any options, { type: 'major' } included.
    if (kind === 'young') gc({ type: 'minor' });
    else gc();
  };
}
