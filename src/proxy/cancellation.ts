/**
 * What a client session needs to know about a scrape's cancellation: whether and why it
 * was cancelled, and a listener for when it is. An AbortSignal is one; `Cancellation` is
 * another, without EventTarget.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * The scrape handler's cancellation: an AbortController's signal costs about 5 µs per
 * scrape to create and to add and remove one listener (EventTarget), plus the garbage it
 * leaves; this costs a few allocations. Listeners run once, at the first abort().
 */
export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> = [];

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners.indexOf(listener);
    if (index >= 0) this.listeners.splice(index, 1);
  }
}
