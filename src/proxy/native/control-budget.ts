import type { Duplex } from 'node:stream';
import { STREAM_WINDOW_BYTES } from '../../wire/protocol.js';

/** How often every tunnel's budget is checked: a flood is cut within about this long. */
export const CONTROL_CHECK_MS = 100;
/** Credited per stream the proxy opens: its response head and trailer (headers up to 64 KiB). */
export const STREAM_ALLOWANCE_BYTES = 64 * 1024 + 1024;
/**
 * Tolerated on top of the limit before a tunnel counts as flooding: DATA dropped for
 * cancelled streams can arrive after their credit was used up (a tunnel whose unread scrapes
 * were cancelled was cut off with about 2 MiB unexplained). A real flood sends tens of MiB
 * per second and still passes this within a fraction of a second.
 */
export const FLOOD_HEADROOM_BYTES = 16 * 1024 * 1024;
/** Credited per DATA chunk on top of its payload: the frame header and padding. */
export const DATA_FRAME_ALLOWANCE_BYTES = 9 + 256;

/**
 * What a tunnel may receive besides what its scrapes need: WINDOW_UPDATE, PING, SETTINGS and
 * other frames that carry no scrape data cost the proxy work (in nghttp2, not in JavaScript)
 * and no Node option bounds them. Each budget compares the bytes its socket read with the
 * bytes its streams account for: DATA as it is read, an allowance per stream and per DATA
 * chunk, and a stream window for a stream closed before its end (DATA that arrived while
 * it was paused is dropped unread). The rest fills a bucket that drains at `bytesPerSecond`
 * and holds one second of it, plus a stream window per open stream (DATA that arrived for
 * a paused stream, not read yet). One timer checks every tunnel: no JavaScript per frame.
 */
export class ControlBudget {
  private credited = 0;
  private lastRead: number;
  private level = 0;
  private openStreams = 0;

  constructor(
    private readonly socket: Duplex & { bytesRead?: number },
    private readonly bytesPerSecond: () => number,
    private readonly onFlood: (reason: string) => void,
  ) {
    this.lastRead = socket.bytesRead ?? 0;
  }

  /** Bytes the socket read for a reason: a DATA chunk arrived. */
  credit(bytes: number): void {
    this.credited += bytes;
  }

  streamOpened(): void {
    this.openStreams += 1;
    this.credited += STREAM_ALLOWANCE_BYTES;
  }

  /** `ended`: its whole body was read; otherwise up to a window of DATA was dropped unread. */
  streamClosed(ended: boolean): void {
    this.openStreams -= 1;
    if (!ended) this.credited += STREAM_WINDOW_BYTES;
  }

  /** Called every CONTROL_CHECK_MS; true when the tunnel went over its budget. */
  check(): boolean {
    const read = this.socket.bytesRead ?? this.lastRead;
    const rate = this.bytesPerSecond();
    const unexplained = read - this.lastRead - this.credited;
    this.lastRead = read;
    this.credited = 0;
    this.level = Math.max(0, this.level + unexplained - (rate * CONTROL_CHECK_MS) / 1000);
    const allowed = rate + FLOOD_HEADROOM_BYTES + this.openStreams * STREAM_WINDOW_BYTES;
    if (this.level <= allowed) return false;
    this.onFlood(
      `sent ${Math.round(this.level / 1024)} KiB more than its scrapes need (WINDOW_UPDATE, PING, SETTINGS or other frames without scrape data), over the limit of ${Math.round(rate / 1024)} KiB/s (max_tunnel_control_bytes_per_second)`,
    );
    return true;
  }
}

/** Checks every live budget at one interval; the timer runs only while there are tunnels. */
class BudgetWatch {
  private readonly budgets = new Set<ControlBudget>();
  private timer: NodeJS.Timeout | undefined;

  add(budget: ControlBudget): void {
    this.budgets.add(budget);
    this.timer ??= setInterval(() => this.tick(), CONTROL_CHECK_MS).unref();
  }

  delete(budget: ControlBudget): void {
    this.budgets.delete(budget);
    if (this.budgets.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    for (const budget of this.budgets) {
      if (budget.check()) this.delete(budget);
    }
  }
}

export const controlBudgets = new BudgetWatch();
