import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScrapeCancel, type CancelSignal } from '../src/util/scrape-cancel.js';

interface Canceller {
  signal: CancelSignal;
  abort(reason: unknown): void;
}

/**
 * The transports were written against AbortController: ScrapeCancel, which the proxy gives
 * each scrape instead, must behave as it does in everything they use.
 */
const KINDS: Array<[string, () => Canceller]> = [
  ['AbortController', () => new AbortController()],
  ['ScrapeCancel', () => new ScrapeCancel()],
];

for (const [kind, make] of KINDS) {
  describe(`${kind} as a scrape's cancel signal`, () => {
    it('calls its listeners once, in the order they were added, with the reason set', () => {
      const cancel = make();
      const { signal } = cancel;
      const calls: string[] = [];
      signal.addEventListener('abort', () => calls.push(`first ${String(signal.reason)}`), {
        once: true,
      });
      signal.addEventListener('abort', () => calls.push(`second ${String(signal.aborted)}`));
      assert.equal(signal.aborted, false);
      assert.equal(signal.reason, undefined);
      cancel.abort('deadline');
      cancel.abort('again');
      assert.deepEqual(calls, ['first deadline', 'second true']);
      assert.equal(signal.reason, 'deadline');
    });

    it('does not call a removed listener, nor one added after the abort', () => {
      const cancel = make();
      const { signal } = cancel;
      const calls: string[] = [];
      const removed = (): void => void calls.push('removed');
      signal.addEventListener('abort', removed);
      signal.addEventListener('abort', () => calls.push('kept'));
      signal.removeEventListener('abort', removed);
      signal.removeEventListener('abort', () => {});
      cancel.abort(new Error('gone'));
      signal.addEventListener('abort', () => calls.push('late'));
      cancel.abort(new Error('again'));
      assert.deepEqual(calls, ['kept']);
      assert.equal((signal.reason as Error).message, 'gone');
    });
  });
}
