/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): the functions with the most
 * self time, and where natprox's own code (src/ or dist/) spends it.
 *   node --import tsx bench/profile-summary.ts [--top N] FILE.cpuprofile ...
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(frame: CallFrame): string {
  const file = frame.url.replace(/^file:\/\/.*?\/(dist|src|node_modules)\//, '$1/');
  const short = file === '' ? '' : ` ${file.replace(/^node:/, 'node:')}:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'}${short}`;
}

function summarize(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const totalUs = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const key = where(frame);
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const area =
      frame.functionName === '(idle)'
        ? '(idle)'
        : frame.url.includes('/dist/') || frame.url.includes('/src/')
          ? 'natprox'
          : frame.url.includes('node_modules')
            ? 'node_modules'
            : frame.url.startsWith('node:')
              ? 'node core (JS)'
              : frame.url === ''
                ? `native ${frame.functionName}`
                : 'other';
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    if (frame.functionName !== '(idle)') busyUs += us;
  }
  const pct = (us: number): string => `${((us / Math.max(1, busyUs)) * 100).toFixed(1)}%`;
  console.log(
    `\n${basename(file)}: ${(totalUs / 1e6).toFixed(1)} s wall, ${(busyUs / 1e6).toFixed(2)} s busy`,
  );
  console.log('  by area (share of busy time):');
  for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    if (area !== '(idle)') console.log(`    ${pct(us).padStart(6)}  ${area}`);
  }
  console.log(`  top ${top} functions by self time:`);
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top + 1)) {
    if (key.startsWith('(idle)')) continue;
    console.log(`    ${pct(us).padStart(6)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
  }
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '15' } },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error('usage: node --import tsx bench/profile-summary.ts [--top N] FILE.cpuprofile ...');
  process.exitCode = 2;
}
for (const file of positionals) summarize(file, Number(values.top));
