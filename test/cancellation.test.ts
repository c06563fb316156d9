import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cancellation } from '../src/proxy/cancellation.js';

describe('Cancellation', () => {
  it('runs each listener once, at the first abort, with the first reason', () => {
    const cancel = new Cancellation();
    const calls: string[] = [];
    cancel.addEventListener('abort', () => calls.push(`a:${String(cancel.reason)}`));
    cancel.addEventListener('abort', () => calls.push('b'));
    assert.equal(cancel.aborted, false);
    cancel.abort('first');
    cancel.abort('second');
    assert.equal(cancel.aborted, true);
    assert.equal(cancel.reason, 'first');
    assert.deepEqual(calls, ['a:first', 'b']);
  });

  it('does not call a removed listener, nor one added after the abort', () => {
    const cancel = new Cancellation();
    let removedCalls = 0;
    let lateCalls = 0;
    const removed = (): void => {
      removedCalls += 1;
    };
    cancel.addEventListener('abort', removed);
    cancel.removeEventListener('abort', removed);
    cancel.removeEventListener('abort', removed); // removing twice is harmless
    cancel.abort(new Error('gone'));
    cancel.addEventListener('abort', () => {
      lateCalls += 1;
    });
    assert.equal(removedCalls, 0);
    assert.equal(lateCalls, 0);
  });
});
