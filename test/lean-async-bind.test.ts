import assert from 'node:assert/strict';
import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import { once } from 'node:events';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { main } from '../src/cli/main.js';
import { installLeanAsyncResourceBind } from '../src/util/lean-async-bind.js';

// Each test file runs in its own process, so replacing the prototype's bind stays here.
const nodeBind = AsyncResource.prototype.bind;
const nodeBindWraps = nodeBind.toString().includes('deprecate(');
const installed = installLeanAsyncResourceBind();

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

/** Old-space growth (MB) after binding 10,000 closures over 2 KB each and scavenging. */
function oldSpaceGrowthMb(bind: typeof nodeBind): number {
  const oldSpace = (): number =>
    v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')
      ?.space_used_size ?? 0;
  gc({ type: 'major' });
  const before = oldSpace();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 2000; i++) {
      const payload = new Array<number>(256).fill(i);
      bind.call(new AsyncResource('probe'), () => payload.length);
    }
    // An object is promoted when it survives two scavenges.
    gc({ type: 'minor' });
    gc({ type: 'minor' });
  }
  return (oldSpace() - before) / 1e6;
}

test('installed exactly where Node wraps bound functions in deprecate(), and only once', () => {
  assert.equal(installed, nodeBindWraps);
  assert.equal(installLeanAsyncResourceBind(), false);
});

test('bound functions die young: nothing they close over reaches the old space', () => {
  const lean = oldSpaceGrowthMb(AsyncResource.prototype.bind);
  assert.ok(lean < 5, `old space grew ${lean.toFixed(1)} MB with the bind in use`);
  if (nodeBindWraps) {
    // The control: with Node's own bind the same closures are promoted (~30 MB).
    const stock = oldSpaceGrowthMb(nodeBind);
    assert.ok(stock > 15, `Node's bind promoted only ${stock.toFixed(1)} MB; is it still needed?`);
  }
});

test('runs the function in the resource async scope with its this and arguments', () => {
  const resource = new AsyncResource('natprox-test');
  let seen: { id: number; self: unknown; args: unknown[] } | undefined;
  const fn = function (this: unknown, a: number, b: number): number {
    seen = { id: executionAsyncId(), self: this, args: [a, b] };
    return a + b;
  };
  const bound = resource.bind(fn);
  const receiver = { name: 'receiver' };
  assert.equal(bound.call(receiver, 2, 3), 5);
  assert.deepEqual(seen, { id: resource.asyncId(), self: receiver, args: [2, 3] });
  assert.equal(bound.length, 2);

  // bind(fn, thisArg) is documented; @types/node leaves thisArg out.
  const bindWithThis = resource.bind as unknown as (
    this: AsyncResource,
    f: typeof fn,
    thisArg: unknown,
  ) => typeof fn;
  const fixed = bindWithThis.call(resource, fn, receiver);
  assert.equal(fixed.call({ other: true }, 4, 5), 9);
  assert.equal(seen?.self, receiver);
  assert.equal(seen?.id, resource.asyncId());

  const viaStatic = AsyncResource.bind((x: number) => x * 2);
  assert.equal(viaStatic(21), 42);
});

test('a non-function gets Node’s own error', () => {
  const resource = new AsyncResource('natprox-test');
  assert.throws(() => resource.bind('nope' as never), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('the deprecated asyncResource property still works and warns once (DEP0172)', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const resource = new AsyncResource('natprox-test');
    const other = new AsyncResource('natprox-other');
    const bound = resource.bind(() => 1) as (() => number) & { asyncResource: AsyncResource };
    assert.equal(bound.asyncResource, resource);
    bound.asyncResource = other;
    assert.equal(bound.asyncResource, other);
    assert.ok(Object.keys(bound).includes('asyncResource'));
    if (installed) {
      await once(process, 'warning');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        warnings.map((w) => (w as Error & { code?: string }).code),
        ['DEP0172'],
      );
    }
  } finally {
    process.off('warning', onWarning);
  }
});

test('every natprox command runs with it installed', async () => {
  AsyncResource.prototype.bind = nodeBind;
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    assert.equal(await main(['token', '--help']), 0);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(AsyncResource.prototype.bind !== nodeBind, nodeBindWraps);
});
