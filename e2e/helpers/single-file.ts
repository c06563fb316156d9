/**
 * The single-file build, made by scripts/bundle.mjs (what `npm run build` runs) into a temp
 * directory with no node_modules anywhere above it, and run there with plain `node`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcessGroup, RunningProcess } from './processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Builds the bundle into `dir`/natprox.mjs and checks it cannot lean on any node_modules. */
export function buildSingleFile(dir: string): string {
  const file = join(dir, 'natprox.mjs');
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--outfile', file], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'node_modules'))) {
      throw new Error(
        `${join(at, 'node_modules')} exists, so running ${file} would not prove that the single-file build needs no node_modules`,
      );
    }
    if (dirname(at) === at) break;
  }
  // Only Node's own modules may stay outside the bundle.
  const text = readFileSync(file, 'utf8');
  const external = [
    ...text.matchAll(/^\s*import\s[^'"]*?from\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
  ]
    .map((match) => match[1] as string)
    .filter((specifier) => !specifier.startsWith('node:'));
  if (external.length > 0) {
    throw new Error(`${file} imports modules from outside the bundle: ${external.join(', ')}`);
  }
  return file;
}

/**
 * Runs `node natprox.mjs ARGS` from the bundle's directory with a plain environment: no
 * NODE_OPTIONS (so no tsx loader), no NODE_PATH.
 */
export function startSingleFile(
  group: ProcessGroup,
  name: string,
  file: string,
  args: string[],
): RunningProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, NATPROX_LOG_LEVEL: 'debug' };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  return group.start(name, process.execPath, [file, ...args], { cwd: dirname(file), env });
}
