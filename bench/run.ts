/**
 * natprox benchmark harness: `npm run bench [-- --quick] [-- --only a,b] [-- --profile]`.
 *
 * Runs every scenario of issue 6 on loopback against real `natprox proxy` and `natprox client`
 * processes, prints a table (each figure next to its direct baseline from the same run) and
 * writes the results as JSON. Missed goals are reported, not fatal: the exit code is 1 only
 * when the harness itself breaks (a scenario throws, or scrapes that should succeed fail).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killAll, ROOT } from './lib/children.js';
import type { Context, Scenario, ScenarioResult } from './lib/context.js';
import { startDriver } from './lib/driver.js';
import { removeConfigFiles } from './lib/natprox.js';
import { markdownTable, type Row } from './lib/report.js';
import { body } from './scenarios/body.js';
import { cadence } from './scenarios/cadence.js';
import { deadPeer } from './scenarios/dead-peer.js';
import { failFast } from './scenarios/fail-fast.js';
import { fleet } from './scenarios/fleet.js';
import { floods } from './scenarios/floods.js';
import { floor } from './scenarios/floor.js';
import { footprint } from './scenarios/footprint.js';
import { herd } from './scenarios/herd.js';
import { latency } from './scenarios/latency.js';
import { multiProxy } from './scenarios/multi-proxy.js';
import { throughput } from './scenarios/throughput.js';

const SCENARIOS: Record<string, Scenario> = {
  latency,
  cadence,
  throughput,
  body,
  fleet,
  herd,
  'fail-fast': failFast,
  'dead-peer': deadPeer,
  'multi-proxy': multiProxy,
  floods,
  floor,
  footprint,
};

const USAGE = `Usage: npm run bench [-- FLAGS]
  --quick          a short version of every scenario (about 70 s on a quiet 2-core machine; what CI runs)
  --only a,b       run only these scenarios: ${Object.keys(SCENARIOS).join(', ')}
  --profile        run natprox under node --cpu-prof (profiles in bench/profiles/); numbers
                   are slower with it, use it to see where the time goes, not for results
  --out FILE       where to write the JSON (default bench/results.json, quick:
                   bench/results-quick.json)
  --no-build       do not rebuild dist/ even if src/ is newer
`;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** bin/natprox.js runs dist/: rebuild it when src/ has changed since. */
function ensureBuilt(): void {
  const main = join(ROOT, 'dist/cli/main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  console.log('dist/ is missing or older than src/: npm run build');
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status === 0) return;
  if (!existsSync(main)) throw new Error('npm run build failed and there is no dist/ to run');
  console.log('npm run build failed: measuring the dist/ that is there');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const selected = values.only
    ? values.only.split(',').map((s) => s.trim())
    : Object.keys(SCENARIOS);
  const unknown = selected.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  if (!values['no-build']) ensureBuilt();

  const startedAt = new Date();
  const quick = values.quick;
  let cpuProfDir: string | undefined;
  if (values.profile) {
    cpuProfDir = join(ROOT, 'bench/profiles', startedAt.toISOString().replace(/[:.]/g, '-'));
    mkdirSync(cpuProfDir, { recursive: true });
  }
  const failures: string[] = [];
  const driver = await startDriver();
  const ctx: Context = {
    quick,
    driver,
    cpuProfDir,
    log: (message) => console.log(`  ${message}`),
    fail: (message) => {
      failures.push(message);
      console.log(`  HARNESS FAILURE: ${message}`);
    },
  };
  const rows: Row[] = [];
  const scenarios: Record<string, ScenarioResult['details'] & { seconds: number }> = {};
  console.log(
    `natprox bench${quick ? ' (quick)' : ''}: ${selected.join(', ')}; nproc ${availableParallelism()}, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  try {
    for (const name of selected) {
      const scenario = SCENARIOS[name] as Scenario;
      const t0 = performance.now();
      process.stdout.write(`- ${name} ... `);
      try {
        const result = await scenario(ctx);
        const seconds = (performance.now() - t0) / 1000;
        console.log(`${seconds.toFixed(1)} s`);
        rows.push(...result.rows);
        scenarios[name] = { ...result.details, seconds };
      } catch (err) {
        console.log('failed');
        ctx.fail(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        killAll();
      }
    }
  } finally {
    await driver.close();
    killAll();
    removeConfigFiles();
  }

  const totalSeconds = (Date.now() - startedAt.getTime()) / 1000;
  console.log(`\n${markdownTable(rows)}\n`);
  for (const r of rows.filter((r) => r.note))
    console.log(`  ${r.scenario} / ${r.metric}: ${r.note}`);
  const missed = rows.filter((r) => r.pass === false);
  const met = rows.filter((r) => r.pass === true);
  console.log(
    `\n${met.length} goals met, ${missed.length} missed${missed.length ? `: ${missed.map((r) => `${r.scenario} / ${r.metric}`).join('; ')}` : ''}`,
  );
  const out = values.out ?? join(ROOT, quick ? 'bench/results-quick.json' : 'bench/results.json');
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: startedAt.toISOString(),
        quick,
        profile: values.profile,
        totalSeconds,
        machine: {
          nproc: availableParallelism(),
          cpu: cpus()[0]?.model ?? 'unknown',
          memoryGiB: totalmem() / 2 ** 30,
          node: process.version,
          loadavgAtStart: loadavg(),
        },
        rows,
        scenarios,
        failures,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out} (${totalSeconds.toFixed(1)} s in all)`);
  if (cpuProfDir)
    console.log(`CPU profiles in ${cpuProfDir}; summarise with bench/profile-summary.ts`);
  if (failures.length > 0) {
    console.log(
      `\nthe harness broke (${failures.length}):\n${failures.map((f) => `- ${f}`).join('\n')}`,
    );
    return 1;
  }
  return 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    removeConfigFiles();
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exitCode = 1;
  },
);
