/**
 * Real processes for the end-to-end tests: output captured line by line, bounded waits, and
 * a group that stops every process in teardown and prints their logs when a step fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';

export interface RunningProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every line written to stdout or stderr so far. */
  lines(): string[];
  /**
   * Resolves with the first line matching `pattern` at index `fromLine` or later (rejects after
   * `timeoutMs`, or when the process exits first).
   */
  waitForLine(pattern: RegExp, timeoutMs: number, fromLine?: number): Promise<string>;
  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. Resolves with the time of the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** 'pipe' to write to the process (child.stdin); default: no input. */
  stdin?: 'pipe' | 'ignore';
}

/** Processes started by one test; `stopAll()` in teardown, `report()` when a step fails. */
export class ProcessGroup {
  private readonly processes: RunningProcess[] = [];

  start(name: string, command: string, args: string[], options: StartOptions = {}): RunningProcess {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const waiters = new Set<() => void>();
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = partial[stream] + chunk.toString('utf8');
      const parts = text.split('\n');
      partial[stream] = parts.pop() ?? '';
      lines.push(...parts);
      for (const waiter of [...waiters]) waiter();
    };
    child.stdout?.on('data', collect('stdout'));
    child.stderr?.on('data', collect('stderr'));
    let running = true;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve) => {
        child.once('exit', (code, signal) => {
          running = false;
          for (const stream of ['stdout', 'stderr'] as const) {
            if (partial[stream] !== '') lines.push(partial[stream]);
            partial[stream] = '';
          }
          for (const waiter of [...waiters]) waiter();
          resolve({ code, signal });
        });
      },
    );
    child.once('error', (err) => lines.push(`[could not start ${command}: ${err.message}]`));

    const proc: RunningProcess = {
      name,
      child,
      exited,
      get running() {
        return running;
      },
      lines: () => [...lines],
      waitForLine(pattern, timeoutMs, fromLine = 0) {
        return new Promise((resolve, reject) => {
          const check = (): void => {
            const match = lines.slice(fromLine).find((line) => pattern.test(line));
            if (match !== undefined) finish(() => resolve(match));
            else if (!running) {
              finish(() =>
                reject(new Error(`${name} exited before logging a line matching ${pattern}`)),
              );
            }
          };
          const timer = setTimeout(() => {
            finish(() =>
              reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms`)),
            );
          }, timeoutMs);
          const finish = (settle: () => void): void => {
            clearTimeout(timer);
            waiters.delete(check);
            settle();
          };
          waiters.add(check);
          check();
        });
      },
      async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
        if (running) {
          child.kill(signal);
          const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          await exited;
          clearTimeout(killer);
        }
        return Date.now();
      },
    };
    this.processes.push(proc);
    return proc;
  }

  /** Stops every process still running (SIGTERM, then SIGKILL after 5 s). */
  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((proc) => proc.stop('SIGTERM', 5000)));
  }

  /**
   * The relevant log lines of every process: its warnings and errors, then its last lines.
   */
  report(lastLines = 25): string {
    const out: string[] = [];
    for (const proc of this.processes) {
      const lines = proc.lines();
      const tail = lines.slice(-lastLines);
      const problems = lines
        .slice(0, Math.max(0, lines.length - lastLines))
        .filter((line) => /level=(warn|error)|"level":(40|50|60)|\berror\b|\bfail/i.test(line))
        .slice(-30);
      out.push(
        `──── ${proc.name} (pid ${proc.child.pid ?? '?'}, ${proc.running ? 'running' : `exited ${proc.child.exitCode ?? proc.child.signalCode}`}, ${lines.length} lines)`,
      );
      if (problems.length > 0)
        out.push('  earlier warnings and errors:', ...problems.map((l) => `    ${l}`));
      out.push(`  last ${tail.length} lines:`, ...tail.map((l) => `    ${l}`));
    }
    return out.join('\n');
  }
}

/** A port on 127.0.0.1 that was free a moment ago (bound with port 0, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Distinct free ports (none handed out twice in one call). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Polls `check` every `everyMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
