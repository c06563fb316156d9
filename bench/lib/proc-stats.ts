/**
 * Resource use of a process seen from outside, from /proc (Linux): resident memory now and at
 * its peak, and CPU time spent. Works for any process we may read, so natprox runs unmodified.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** Kernel clock ticks per second for /proc/PID/stat (sysconf(_SC_CLK_TCK), 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcSample {
  rssKiB: number;
  /** Peak RSS since start or since the last resetPeak(). */
  hwmKiB: number;
  /** utime + stime, milliseconds. */
  cpuMs: number;
}

function statusField(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

export function sampleProcess(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3, "state".
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return {
    rssKiB: statusField(status, 'VmRSS'),
    hwmKiB: statusField(status, 'VmHWM'),
    cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND,
  };
}

/** Resets VmHWM to the current RSS (Linux >= 4.0). Returns false where that is not possible. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export function sumCpuMs(pids: readonly number[]): number {
  return pids.reduce((total, pid) => total + sampleProcess(pid).cpuMs, 0);
}

/** A CPU-time meter over a set of processes: start(), then elapsed() in ms of CPU. */
export function cpuMeter(pids: readonly number[]): { elapsedMs(): number } {
  const start = sumCpuMs(pids);
  return { elapsedMs: () => sumCpuMs(pids) - start };
}
