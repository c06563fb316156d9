import type { Duplex } from 'node:stream';

/** How often every tunnel's budget is checked: a flood is cut within about this long. */
export const CONTROL_CHECK_MS = 100;
/** Credited per stream the proxy opens: its response head and trailer (headers up to 64 KiB). */
export const STREAM_ALLOWANCE_BYTES = 64 * 1024 + 1024;
/** Credited per DATA chunk on top of its payload: the frame header and padding. */
export const DATA_FRAME_ALLOWANCE_BYTES = 9 + 256;

/**
 * What a tunnel may receive besides what its scrapes need: WINDOW_UPDATE, PING, SETTINGS and
 * other frames that carry no scrape data cost the proxy work (in nghttp2, not in JavaScript)
 * and no Node option bounds them. Each budget compares the bytes its socket read with the
 * bytes its streams account for (DATA payload, and an allowance per stream and per DATA
 * chunk); the rest drains a leaky bucket of `bytesPerSecond`, holding one second of it.
 * One timer checks every tunnel: no JavaScript runs per frame.
 */
export class ControlBudget {
  private credited = 0;
  private lastRead: number;
  private level = 0;

  constructor(
    private readonly socket: Duplex & { bytesRead?: number },
    private readonly bytesPerSecond: () => number,
    private readonly onFlood: (reason: string) => void,
  ) {
    this.lastRead = socket.bytesRead ?? 0;
  }

  /** Bytes the socket read for a reason: a stream opened, a DATA chunk arrived. */
  credit(bytes: number): void {
    this.credited += bytes;
  }

  /** Called every CONTROL_CHECK_MS; true when the tunnel went over its budget. */
  check(): boolean {
    const read = this.socket.bytesRead ?? this.lastRead;
    const rate = this.bytesPerSecond();
    const unexplained = read - this.lastRead - this.credited;
    this.lastRead = read;
    this.credited = 0;
    this.level = Math.max(0, this.level + unexplained - (rate * CONTROL_CHECK_MS) / 1000);
    if (this.level <= rate) return false;
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
