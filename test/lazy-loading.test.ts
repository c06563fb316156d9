/**
 * What a command loads (issue 19: on a Raspberry Pi every module loaded stays resident).
 * bin/natprox.js runs as a real process with a module hook that records every module URL it
 * loads; `--version` must load no command, the client none of the proxy, check, demo or
 * config code, YAML and the schema validator only with a config file, prom-client only with
 * --metrics-listen, and no undici.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN, deadPort, spawnNatprox } from './helpers/loopback.js';

const dir = mkdtempSync(join(tmpdir(), 'natprox-lazy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The hook runs on the loader thread; it appends each URL loaded to the file in the env.
const HOOKS = join(dir, 'hooks.mjs');
writeFileSync(
  HOOKS,
  `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.NATPROX_TEST_LOADED, url + '\\n');
  return next(url, context);
}
`,
);
const REGISTER = join(dir, 'register.mjs');
writeFileSync(
  REGISTER,
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(HOOKS).href)});\n`,
);

let traces = 0;
function traceEnv(): { env: NodeJS.ProcessEnv; loaded: () => string[] } {
  traces += 1;
  const file = join(dir, `loaded-${traces}.txt`);
  writeFileSync(file, '');
  return {
    env: { NODE_OPTIONS: `--import ${REGISTER}`, NATPROX_TEST_LOADED: file },
    loaded: () => readFileSync(file, 'utf8').split('\n').filter(Boolean),
  };
}

/** The loaded URLs that match `pattern`. */
function matching(loaded: string[], pattern: RegExp): string[] {
  return loaded.filter((url) => pattern.test(url));
}

const COMMANDS = /\/cli\/(proxy|client|check|demo|config|token|hash-password)-command\.js$/;
// undici: the local fetch runs on node:http, which Node has loaded anyway (undici: 17 MiB).
const NOT_FOR_THE_CLIENT =
  /\/dist\/(proxy|check)\/|\/cli\/(demo|config|check|proxy)-command\.js$|\/node_modules\/(yaml|zod|prom-client|undici)\//;

/** Runs a client until it has logged its start, then stops it; resolves with what it loaded. */
async function clientLoads(t: TestContext, args: string[]): Promise<string[]> {
  const trace = traceEnv();
  const proxyPort = await deadPort();
  const client = spawnNatprox(
    ['client', '--proxy-url', `http://127.0.0.1:${proxyPort}`, '--name', 'lazy', ...args],
    (fn) => t.after(fn),
    trace.env,
  );
  await client.waitFor(/natprox client starting/);
  client.child.kill('SIGTERM');
  await client.exited;
  return trace.loaded();
}

/** Runs a proxy until it listens, then stops it; resolves with what it loaded. */
async function proxyLoads(t: TestContext, args: string[]): Promise<string[]> {
  const trace = traceEnv();
  const port = await deadPort();
  const proxy = spawnNatprox(
    ['proxy', '--listen', `127.0.0.1:${port}`, ...args],
    (fn) => t.after(fn),
    trace.env,
  );
  await proxy.waitFor(/proxy listening/);
  proxy.child.kill('SIGTERM');
  await proxy.exited;
  return trace.loaded();
}

const NOT_FOR_THE_PROXY =
  /\/dist\/(client|check)\/|\/cli\/(demo|config|check|client)-command\.js$|\/node_modules\/(yaml|zod|undici)\//;

describe('modules loaded per command', () => {
  it('natprox --version loads no command', async () => {
    const trace = traceEnv();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [BIN, '--version'],
        { env: { ...process.env, ...trace.env }, timeout: 10_000 },
        (err, out) => (err ? reject(err) : resolve(out)),
      );
    });
    assert.match(stdout, /^\d+\.\d+\.\d+/);
    const loaded = trace.loaded();
    assert.ok(matching(loaded, /\/cli\/main\.js$/).length === 1, 'the hook saw main.js');
    assert.deepEqual(matching(loaded, COMMANDS), []);
    assert.deepEqual(matching(loaded, /\/node_modules\//), []);
  });

  it('the client loads no proxy, check, demo or config code, no YAML, zod, prom-client or undici', async (t) => {
    const loaded = await clientLoads(t, ['--allow', '9100']);
    assert.ok(matching(loaded, /\/cli\/client-command\.js$/).length === 1, 'the hook saw it');
    assert.deepEqual(matching(loaded, NOT_FOR_THE_CLIENT), []);
  });

  it('the client loads prom-client with --metrics-listen', async (t) => {
    const loaded = await clientLoads(t, ['--allow', '9100', '--metrics-listen', '127.0.0.1:0']);
    assert.notDeepEqual(matching(loaded, /\/node_modules\/prom-client\//), []);
  });

  it('the client loads YAML and zod with --config', async (t) => {
    const config = join(dir, 'client.yaml');
    writeFileSync(config, 'allow: ["9100"]\n');
    const loaded = await clientLoads(t, ['--config', config]);
    assert.notDeepEqual(matching(loaded, /\/node_modules\/yaml\//), []);
    assert.notDeepEqual(matching(loaded, /\/node_modules\/zod\//), []);
  });

  it('the proxy loads no client, check or demo code, and no YAML, zod or undici', async (t) => {
    const loaded = await proxyLoads(t, []);
    assert.ok(matching(loaded, /\/cli\/proxy-command\.js$/).length === 1, 'the hook saw it');
    assert.deepEqual(matching(loaded, NOT_FOR_THE_PROXY), []);
  });

  it('the proxy loads YAML and zod with --config', async (t) => {
    const config = join(dir, 'proxy.yaml');
    writeFileSync(config, 'default_scrape_timeout: 10s\n');
    const loaded = await proxyLoads(t, ['--config', config]);
    assert.notDeepEqual(matching(loaded, /\/node_modules\/yaml\//), []);
    assert.notDeepEqual(matching(loaded, /\/node_modules\/zod\//), []);
  });
});
