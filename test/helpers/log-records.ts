/** The JSON log lines of a natprox process started with spawnNatprox, parsed. */
import type { NatproxProcess } from './loopback.js';

export interface LogRecord {
  msg: string;
  time: number;
  [field: string]: unknown;
}

/** Every complete JSON log line so far (other output, and a line being written, skipped). */
export function records(proc: NatproxProcess): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of proc.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // a line still being written
    }
  }
  return out;
}

/** How many times the process has logged `msg`. */
export function count(proc: NatproxProcess, msg: string): number {
  return records(proc).filter((record) => record.msg === msg).length;
}
