import assert from 'node:assert/strict';
import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import { once } from 'node:events';
import { test } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main } from '../src/cli/main.js';
import { installLeanAsyncResourceBind } from '../src/util/lean-async-bind.js';

// Each test file runs in its own process, so replacing the prototype's bind stays here.
const nodeBind = AsyncResource.prototype.bind;
const nodeBindWraps = nodeBind.toString().includes('deprecate(');
const installed = installLeanAsyncResourceBind();
const execFileAsync = promisify(execFile);

/** Old-space growth (MB) of test/helpers/bind-promotion.ts, measured in a fresh process. */
async function oldSpaceGrowthMb(mode: 'lean' | 'stock'): Promise<number> {
  const script = fileURLToPath(new URL('./helpers/bind-promotion.ts', import.meta.url));
  const { stdout } = await execFileAsync(process.execPath, [
    '--expose-gc',
    '--import',
    'tsx',
    script,
    mode,
  ]);
  return Number(stdout.trim());
}

test('installed exactly where Node wraps bound functions in deprecate(), and only once', () => {
  assert.equal(installed, nodeBindWraps);
  assert.equal(installLeanAsyncResourceBind(), false);
});

test('bound functions die young: nothing they close over reaches the old space', async () => {
  const lean = await oldSpaceGrowthMb('lean');
  assert.ok(lean < 5, `old space grew ${lean.toFixed(1)} MB with the bind in use`);
  if (nodeBindWraps) {
    // The control: with Node's own bind the same closures are promoted (~36 MB here). Up to
    // three processes, since a full collection V8 starts by itself can take some back.
    let stock = 0;
    for (let attempt = 0; attempt < 3 && stock <= 15; attempt++) {
      stock = Math.max(stock, await oldSpaceGrowthMb('stock'));
    }
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

test('importing natprox as a library leaves Node’s bind alone (only the CLI installs it)', async () => {
  const index = new URL('../src/index.ts', import.meta.url).href;
  const probe = `import { AsyncResource } from 'node:async_hooks';
    const before = AsyncResource.prototype.bind;
    const natprox = await import(${JSON.stringify(index)});
    process.stdout.write(JSON.stringify({
      same: AsyncResource.prototype.bind === before,
      exported: Object.keys(natprox).filter((name) => /bind/i.test(name)),
    }));`;
  const { stdout } = await execFileAsync(process.execPath, [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    probe,
  ]);
  assert.deepEqual(JSON.parse(stdout), { same: true, exported: [] });
});
