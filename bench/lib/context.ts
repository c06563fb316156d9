/** What every scenario gets from the runner, and what it gives back. */
import type { LoadDriver } from './driver.js';
import type { LoadResult } from './load-types.js';
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

/** Records a harness failure when scrapes of a run failed, with the first error seen. */
export function failOnErrors(ctx: Context, what: string, result: LoadResult): void {
  if (result.errors > 0) {
    ctx.fail(`${what}: ${result.errors} errors, e.g. ${result.errorSamples[0]}`);
  }
}
