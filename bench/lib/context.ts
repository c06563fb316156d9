/** What every scenario gets from the runner, and what it gives back. */
import type { LoadDriver } from './driver.js';
import type { Row } from './report.js';

export interface Context {
  quick: boolean;
  driver: LoadDriver;
  /** `node --cpu-prof` output directory for natprox processes (only with --profile). */
  cpuProfDir: string | undefined;
  log(message: string): void;
  /** Records a harness failure (scrapes that should have succeeded did not); the run exits 1. */
  fail(message: string): void;
}

export interface ScenarioResult {
  rows: Row[];
  /** Raw figures for results.json. */
  details: Record<string, unknown>;
}

export type Scenario = (ctx: Context) => Promise<ScenarioResult>;

export const MiB = 1024 * 1024;
export const KiB = 1024;
