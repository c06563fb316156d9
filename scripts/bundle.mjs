#!/usr/bin/env node
// Builds the single-file natprox: one ES module with every dependency inside, runnable with
// plain `node natprox.mjs COMMAND …` and no node_modules (a Raspberry Pi needs only Node and
// this file). Usage: node scripts/bundle.mjs [--outfile FILE]   (default dist/natprox.mjs)
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PINO_WRAPPER = join(ROOT, 'scripts', 'bundle', 'pino-single-file.mjs');

export const DEFAULT_OUTFILE = join(ROOT, 'dist', 'natprox.mjs');

/** What bin/natprox.js does, but importing the sources so the bundle never depends on dist/. */
const ENTRY = `
import { main } from './src/cli/main.ts';
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever is still open after a command has finished must not keep the process alive.
setTimeout(() => process.exit(code), 3000).unref();
`;

// Bundled CommonJS dependencies (pino, yaml …) call require() for Node's built-in modules and
// use __dirname; an ES module has neither, so the bundle defines them first.
const BANNER = `#!/usr/bin/env node
import { createRequire as __natproxCreateRequire } from 'node:module';
import { fileURLToPath as __natproxFileURLToPath } from 'node:url';
import { dirname as __natproxDirname } from 'node:path';
const require = __natproxCreateRequire(import.meta.url);
const __filename = __natproxFileURLToPath(import.meta.url);
const __dirname = __natproxDirname(__filename);`;

/** Things that only work with the package directory next to the code, replaced for the bundle. */
function singleFilePlugin(version) {
  return {
    name: 'natprox-single-file',
    setup(b) {
      // src/version.ts reads ../package.json at run time; the bundle carries the version.
      b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
        contents: `export const VERSION: string = ${JSON.stringify(version)};\n`,
        loader: 'ts',
      }));
      // pino's transports need node_modules at run time; see pino-single-file.mjs.
      b.onResolve({ filter: /^pino$/ }, (args) =>
        args.importer === PINO_WRAPPER ? undefined : { path: PINO_WRAPPER },
      );
    },
  };
}

/** Writes the bundle to `outfile`; resolves with its size in bytes. */
export async function bundle(outfile = DEFAULT_OUTFILE) {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const result = await build({
    stdin: {
      contents: ENTRY,
      resolveDir: ROOT,
      sourcefile: 'natprox-single-file.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    banner: { js: BANNER },
    plugins: [singleFilePlugin(version)],
    legalComments: 'eof',
    // Whitespace only: V8 reads the whole file before running any of it, and 30 % less to
    // read took natprox --version from 150-190 to 110-120 ms and the idle client from 62.0 to
    // 59.1 MiB (bench/README.md, footprint). Renaming identifiers too made both worse
    // (61 MiB for --version), and names keep stack traces readable.
    minifyWhitespace: true,
    metafile: true,
    logLevel: 'warning',
  });
  return result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].bytes;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { outfile: { type: 'string' } } });
  const outfile = values.outfile ?? DEFAULT_OUTFILE;
  const bytes = await bundle(outfile);
  process.stdout.write(`single-file build: ${outfile} (${Math.round(bytes / 1024)} KiB)\n`);
}
