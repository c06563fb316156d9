/**
 * Every process the harness starts goes through here, so that all of them are stopped when
 * the harness ends, however it ends. natprox runs as real processes (bin/natprox.js); the
 * harness's own helpers (targets, load driver, fleet driver) are forked TypeScript modules.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The natprox under test: this checkout, or the built checkout NATPROX_BENCH_BUILD names (a
 * before/after comparison with this harness: `git worktree add /tmp/base REV`, `npm ci` and
 * `npm run build` there, then `NATPROX_BENCH_BUILD=/tmp/base npm run bench -- --no-build`).
 * It replaces the proxy and client processes only: the fleet driver and the floor's bare relay
 * run this checkout's code.
 */
const UNDER_TEST = process.env.NATPROX_BENCH_BUILD || ROOT;
export const BIN = join(UNDER_TEST, 'bin', 'natprox.js');
/** The single-file build (scripts/bundle.mjs), what a Raspberry Pi runs. */
export const SINGLE_FILE = join(UNDER_TEST, 'dist', 'natprox.mjs');

const live = new Set<ChildProcess>();

export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  live.clear();
}

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs` if it has not exited. */
  stop(graceMs?: number): Promise<void>;
}

function wrap(child: ChildProcess, what: string): Spawned {
  track(child);
  if (child.pid === undefined) throw new Error(`could not start ${what}`);
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    if (text.length > 1_000_000) text = text.slice(-500_000);
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const spawned: Spawned = {
    child,
    pid: child.pid,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const match = pattern.exec(text);
          if (!match) return false;
          cleanup();
          resolve(match);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`${what}: no output matching ${pattern} within ${timeoutMs} ms:\n${text}`),
          );
        }, timeoutMs);
        const onExit = (): void => {
          cleanup();
          reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${text}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(waiter), 1);
          child.off('exit', onExit);
        };
        const waiter = (): void => {
          check();
        };
        waiters.push(waiter);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return spawned;
}

/** `node [nodeArgs] bin/natprox.js ARGS` (or another `entry`) with its output captured. */
export function spawnNatprox(args: string[], nodeArgs: string[] = [], entry = BIN): Spawned {
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, NATPROX_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return wrap(child, `natprox ${args[0] ?? ''}`);
}

/** Forks one of the harness's TypeScript modules (through tsx) with an IPC channel. */
export function forkHelper(module: string, args: string[] = []): Spawned {
  const child = fork(fileURLToPath(new URL(`../${module}`, import.meta.url)), args, {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return wrap(child, module);
}

/** Waits for the first IPC message from `child` that satisfies `accept`. */
export function nextMessage<T>(
  spawned: Spawned,
  accept: (message: unknown) => message is T,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const { child } = spawned;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms\n${spawned.output()}`));
    }, timeoutMs);
    const onMessage = (message: unknown): void => {
      if (!accept(message)) return;
      cleanup();
      resolve(message);
    };
    const onExit = (): void => {
      cleanup();
      reject(
        new Error(`${what}: exited (${child.exitCode ?? child.signalCode})\n${spawned.output()}`),
      );
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
