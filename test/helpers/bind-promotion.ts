/**
 * Prints how many MB of old space 10,000 bound closures (2 KB each) reach after two
 * scavenges, with Node's own `AsyncResource.prototype.bind` ("stock") or natprox's ("lean").
 * Run in a fresh process (`--expose-gc`): V8 stops promoting them after the first round in a
 * process, so a measurement only means something as the first one.
 */
import { AsyncResource } from 'node:async_hooks';
import v8 from 'node:v8';
import { installLeanAsyncResourceBind } from '../../src/util/lean-async-bind.js';

const mode = process.argv[2];
if (mode === 'lean') installLeanAsyncResourceBind();
else if (mode !== 'stock') throw new Error(`usage: bind-promotion.ts lean|stock (got ${mode})`);
const gc = globalThis.gc as ((options?: { type: 'minor' | 'major' }) => void) | undefined;
if (!gc) throw new Error('run with --expose-gc');

const oldSpace = (): number =>
  v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.space_used_size ??
  0;
gc({ type: 'major' });
const before = oldSpace();
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < 2000; i++) {
    const payload = new Array<number>(256).fill(i);
    new AsyncResource('probe').bind(() => payload.length);
  }
  // An object is promoted when it survives two scavenges.
  gc({ type: 'minor' });
  gc({ type: 'minor' });
}
process.stdout.write(`${((oldSpace() - before) / 1e6).toFixed(2)}\n`);
