/**
 * The command line as a user meets it: bin/natprox.js run as a real process (the built dist/),
 * its exit codes, help, error messages, config files and flags.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMMON_FLAGS } from '../src/cli/parse-flags.js';
import { BIN, deadPort, spawnNatprox, startTarget, within } from './helpers/loopback.js';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `natprox ARGS` to completion (killed after 10 s). */
function natprox(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 10_000, killSignal: 'SIGKILL', env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const SRC_CLI = fileURLToPath(new URL('../src/cli', import.meta.url));

/**
 * The options object a command's source hands to parseFlags('COMMAND', args, ...): written
 * out in the call, or a table the command imports (CLIENT_FLAGS, shared by client and check).
 */
async function flagTable(command: string): Promise<string> {
  const source = await readFile(join(SRC_CLI, `${command}-command.ts`), 'utf8');
  const start = source.indexOf(`parseFlags('${command}', args, {`);
  if (start >= 0) return source.slice(start, source.indexOf('});', start));
  const shared = new RegExp(`parseFlags\\('${command}', args, ([A-Z_]+)\\)`).exec(source);
  assert.ok(shared, `no parseFlags('${command}', ...) call in ${command}-command.ts`);
  const name = shared[1] as string;
  const from = new RegExp(`import \\{[^}]*\\b${name}\\b[^}]*\\} from '\\./([a-z-]+)\\.js'`).exec(
    source,
  );
  assert.ok(from, `${command}-command.ts uses ${name} but imports it from no ./FILE.js`);
  const table = await readFile(join(SRC_CLI, `${from[1]}.ts`), 'utf8');
  const tableStart = table.indexOf(`export const ${name} = {`);
  assert.ok(tableStart >= 0, `no "export const ${name} = {" in ${from[1]}.ts`);
  return table.slice(tableStart, table.indexOf('\n}', tableStart));
}

/** The flags a command really parses, with COMMON_FLAGS expanded. */
async function parsedFlags(command: string): Promise<{ long: string[]; short: string[] }> {
  const block = await flagTable(command);
  const long = [...block.matchAll(/(?:^|[{,])\s*(?:'([a-z0-9-]+)'|([a-z0-9]+)):\s*\{/gm)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
  const short = [...block.matchAll(/short:\s*'([a-zA-Z])'/g)].map((m) => m[1] as string);
  if (block.includes('...COMMON_FLAGS')) {
    for (const [name, spec] of Object.entries(COMMON_FLAGS)) {
      long.push(name);
      if ('short' in spec) short.push(spec.short);
    }
  }
  assert.ok(long.length > 0, `found no flags in ${command}-command.ts`);
  return { long: [...new Set(long)].sort(), short: [...new Set(short)].sort() };
}

/** The commands main.ts dispatches to, read from its COMMANDS table. */
async function commands(): Promise<string[]> {
  const source = await readFile(join(SRC_CLI, 'main.ts'), 'utf8');
  const start = source.indexOf('const COMMANDS');
  const block = source.slice(start, source.indexOf('};', start));
  const names = [...block.matchAll(/^\s*(?:'([a-z-]+)'|([a-z]+)):\s*\w+,/gm)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
  assert.ok(names.includes('proxy') && names.includes('client'), `COMMANDS not found: ${block}`);
  return names;
}

/** Every --flag and -x the help text mentions. */
function helpFlags(help: string): { long: string[]; short: string[] } {
  const long = [...help.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1] as string);
  const short = [...help.matchAll(/(?<=^|[\s,[])-([a-zA-Z])(?=[\s,\]])/gm)].map(
    (m) => m[1] as string,
  );
  return { long: [...new Set(long)].sort(), short: [...new Set(short)].sort() };
}

/** The flag lines of a "Flags:" section: name and whether the help shows a value for it. */
function helpFlagLines(help: string): Array<{ flag: string; takesValue: boolean }> {
  return [...help.matchAll(/^ {2}(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)( [A-Z]\S*)?/gm)].map((m) => ({
    flag: m[1] as string,
    takesValue: m[2] !== undefined,
  }));
}

function assertOneMessage(stderr: string, command: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace instead of a message:\n${stderr}`);
  assert.equal(
    stderr.match(new RegExp(`^natprox ${command}: `, 'gm'))?.length,
    1,
    `expected one "natprox ${command}:" message, got:\n${stderr}`,
  );
}

/** An origin-form GET on loopback, bounded to 5 s. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .once('error', reject);
    }),
    5000,
    `GET ${path} on port ${port}`,
  );
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natprox-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('natprox --help and --version', { concurrency: true }, () => {
  it('natprox --help exits 0 and lists every command, each of which has its own --help', async () => {
    const result = await natprox(['--help']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    for (const command of await commands()) {
      assert.match(result.stdout, new RegExp(`^ {2}natprox ${command}\\b`, 'm'), command);
      const sub = await natprox([command, '--help']);
      assert.equal(sub.code, 0, `natprox ${command} --help: ${sub.stderr}`);
      assert.match(sub.stdout, new RegExp(`^Usage: natprox ${command}\\b`));
    }
    assert.match(result.stdout, /--version/);
    assert.equal((await natprox(['-h'])).stdout, result.stdout);
    assert.equal((await natprox(['help'])).stdout, result.stdout);
  });

  it('natprox alone prints the help and exits 2', async () => {
    const result = await natprox([]);
    assert.equal(result.code, 2);
    assert.match(result.stdout, /^natprox \S+ — /);
  });

  it('natprox --version prints the package version and exits 0', async () => {
    const pkg = JSON.parse(
      await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'),
    ) as { version: string };
    const result = await natprox(['--version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${pkg.version}\n`);
  });

  for (const command of ['proxy', 'client']) {
    it(`natprox ${command} --help lists exactly the flags ${command}-command.ts parses`, async () => {
      const result = await natprox([command, '--help']);
      assert.equal(result.code, 0, result.stderr);
      const help = helpFlags(result.stdout);
      const parsed = await parsedFlags(command);
      assert.deepEqual(help.long, parsed.long, 'long flags: help vs parser');
      assert.deepEqual(help.short, parsed.short, 'short flags: help vs parser');
      // Every flag line of the help also names its value or not as the parser expects.
      const lines = helpFlagLines(result.stdout);
      assert.deepEqual(lines.map((l) => l.flag).sort(), parsed.long, 'one help line per flag');
    });

    it(`natprox ${command}: the real parser accepts every flag of its help, with or without a value as shown`, async () => {
      const { stdout: help } = await natprox([command, '--help']);
      const lines = helpFlagLines(help);
      assert.ok(lines.length >= 5, `too few flag lines found in:\n${help}`);
      // One run with all of them: parseArgs names the first flag it refuses.
      const args = lines.map(({ flag, takesValue }) => (takesValue ? `--${flag}=x` : `--${flag}`));
      const result = await natprox([command, '--help', ...args]);
      assert.equal(result.code, 0, `natprox ${command} --help ${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, help);
      assert.equal((await natprox([command, '-h'])).stdout, help);
    });
  }

  it('natprox COMMAND --help of the other commands mentions every flag COMMAND-command.ts parses', async () => {
    const others = (await commands()).filter((c) => c !== 'proxy' && c !== 'client');
    assert.ok(others.length > 0);
    const problems: string[] = [];
    for (const command of others) {
      const result = await natprox([command, '--help']);
      assert.equal(result.code, 0, result.stderr);
      const help = helpFlags(result.stdout);
      const parsed = await parsedFlags(command);
      const undocumented = parsed.long.filter((f) => f !== 'help' && !help.long.includes(f));
      if (undocumented.length > 0) {
        problems.push(
          `natprox ${command} accepts --${undocumented.join(', --')}; its help does not say so`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });
});

describe(
  'usage errors exit 2 with a message that says what was wrong',
  { concurrency: true },
  () => {
    it('an unknown command names it, lists the commands and points to --help', async () => {
      const result = await natprox(['prxy']);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /unknown command "prxy"/);
      assert.match(result.stderr, /proxy, client/);
      assert.match(result.stderr, /natprox --help/);
    });

    for (const command of ['proxy', 'client']) {
      it(`natprox ${command}: an unknown flag is named, with a pointer to natprox ${command} --help`, async () => {
        const result = await natprox([command, '--listn', '127.0.0.1:0']);
        assert.equal(result.code, 2);
        assert.equal(result.stdout, '');
        assert.match(result.stderr, /--listn/);
        assert.match(result.stderr, new RegExp(`natprox ${command} --help`));
        assertOneMessage(result.stderr, command);
      });

      it(`natprox ${command}: a stray argument, a flag without its value, a bad --log-level`, async () => {
        const stray = await natprox([command, 'extra']);
        assert.equal(stray.code, 2);
        assert.match(stray.stderr, /'extra'/);
        assert.match(stray.stderr, new RegExp(`natprox ${command} --help`));

        const missing = await natprox([command, '--config']);
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /--config/);
        assert.match(missing.stderr, new RegExp(`natprox ${command} --help`));

        const level = await natprox([command, '--log-level', 'loud']);
        assert.equal(level.code, 2);
        assert.match(level.stderr, /--log-level: expected one of .*"loud"/);
        assertOneMessage(level.stderr, command);
      });
    }

    it('natprox proxy: a bad --listen or duration names the flag and what is expected', async () => {
      const listen = await natprox(['proxy', '--listen', 'localhost']);
      assert.equal(listen.code, 2);
      assert.match(listen.stderr, /--listen: expected HOST:PORT/);
      assertOneMessage(listen.stderr, 'proxy');

      const grace = await natprox(['proxy', '--listen', '127.0.0.1:0', '--shutdown-grace', 'soon']);
      assert.equal(grace.code, 2);
      assert.match(grace.stderr, /--shutdown-grace: expected a duration .*"soon"/);
    });

    it('natprox client without --proxy-url says it is required and gives an example', async () => {
      const result = await natprox(['client', '--allow', '9100']);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /--proxy-url is required/);
      assert.match(result.stderr, /http:\/\/\S+:\d+/);
      assertOneMessage(result.stderr, 'client');
    });

    it('natprox client without --allow says nothing would be scraped', async () => {
      const result = await natprox(['client', '--proxy-url', 'http://127.0.0.1:1']);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--allow/);
      assertOneMessage(result.stderr, 'client');
    });
  },
);

describe(
  'config files: one message naming the file, the field and what is expected',
  { concurrency: true },
  () => {
    const cases: Array<{
      what: string;
      command: 'proxy' | 'client';
      yaml: string;
      expect: RegExp[];
    }> = [
      {
        what: 'proxy: a wrong field type (listen: 8080)',
        command: 'proxy',
        yaml: 'listen: 8080\n',
        expect: [/: listen: expected HOST:PORT/],
      },
      {
        what: 'proxy: a wrong nested field type (limits.max_clients: many)',
        command: 'proxy',
        yaml: 'limits:\n  max_clients: many\n',
        expect: [/: limits\.max_clients: expected a whole number/],
      },
      {
        what: 'proxy: a bad token_sha256 in clients[1]',
        command: 'proxy',
        yaml: `clients:\n  - names: [a]\n    token_sha256: "${'a'.repeat(64)}"\n  - names: [b]\n    token_sha256: nothex\n`,
        expect: [/: clients\[1\]\.token_sha256: expected 64 lowercase hex/],
      },
      {
        what: 'proxy: an unknown field (listne)',
        command: 'proxy',
        yaml: 'listne: 127.0.0.1:9000\n',
        expect: [/unknown field "listne"/],
      },
      {
        what: 'client: a wrong field type (labels.location: 5)',
        command: 'client',
        yaml: 'proxy_url: http://127.0.0.1:1\nallow: [9100]\nlabels:\n  location: 5\n',
        expect: [/: labels\.location: expected a string label value/],
      },
      {
        what: 'client: a bad allow entry',
        command: 'client',
        yaml: 'proxy_url: http://127.0.0.1:1\nallow: [nonsense]\n',
        expect: [/: allow\[0\]: expected PORT or HOST:PORT/],
      },
      {
        what: 'client: an unknown field (proxy-url for proxy_url)',
        command: 'client',
        yaml: 'proxy-url: http://127.0.0.1:1\nallow: [9100]\n',
        expect: [/unknown field "proxy-url"/],
      },
      {
        what: 'proxy: bad YAML syntax',
        command: 'proxy',
        yaml: 'listen: [127.0.0.1:9000\nlimits: {\n',
        expect: [/not valid YAML/, /line \d+/],
      },
      {
        what: 'client: bad YAML syntax',
        command: 'client',
        yaml: 'proxy_url: "http://127.0.0.1:1\n',
        expect: [/not valid YAML/, /line \d+/],
      },
    ];
    let n = 0;
    for (const { what, command, yaml, expect } of cases) {
      n += 1;
      const name = `case-${n}.yaml`;
      it(what, async () => {
        const path = await file(name, yaml);
        const result = await natprox([command, '--config', path]);
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, '');
        assertOneMessage(result.stderr, command);
        assert.ok(result.stderr.startsWith(`natprox ${command}: ${path}: `), result.stderr);
        for (const pattern of expect) assert.match(result.stderr, pattern);
        if (!/YAML/.test(what)) {
          assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
        }
      });
    }

    for (const command of ['proxy', 'client'] as const) {
      it(`${command}: a missing config file is named, with the reason`, async () => {
        const path = join(dir, 'does-not-exist.yaml');
        const result = await natprox([command, '--config', path]);
        assert.equal(result.code, 2);
        assertOneMessage(result.stderr, command);
        assert.match(result.stderr, new RegExp(`${path}: cannot read the config file: .*ENOENT`));
      });
    }
  },
);

describe('config file and flags together: flags win', { concurrency: true }, () => {
  it('proxy: --listen beats listen: in the file; the rest of the file still applies', async (t: TestContext) => {
    const port = await deadPort();
    const path = await file('proxy-listen.yaml', 'listen: 127.0.0.1:1\nshutdown_grace: 1s\n');
    const proxy = spawnNatprox(['proxy', '--config', path, '--listen', `127.0.0.1:${port}`], (fn) =>
      t.after(fn),
    );
    const line = await proxy.waitFor(/"msg":"proxy listening"/);
    assert.equal((JSON.parse(line) as { address: string }).address, `127.0.0.1:${port}`);
    const healthy = (await httpGet(port, '/-/healthy')).status;
    assert.equal(healthy, 200);
    proxy.child.kill('SIGTERM');
    const stopping = await proxy.waitFor(/"msg":"shutting down/);
    assert.equal((JSON.parse(stopping) as { graceMs: number }).graceMs, 1000, 'grace from file');
  });

  it('client: --proxy-url, --name, --label beat the file; allow: comes from the file', async (t: TestContext) => {
    const target = await startTarget(
      (_req, res) => res.end('up 1\n'),
      (fn) => t.after(fn),
    );
    const proxy = spawnNatprox(['proxy', '--listen', '127.0.0.1:0'], (fn) => t.after(fn));
    const listening = await proxy.waitFor(/"msg":"proxy listening"/);
    const proxyPort = Number(/:(\d+)"/.exec(listening)?.[1]);
    const unused = await deadPort();
    const path = await file(
      'client-merge.yaml',
      [
        `proxy_url: http://127.0.0.1:${unused}`,
        'names: [fromfile]',
        `allow: [${target.port}]`,
        'labels:',
        '  location: file',
        '  rack: r1',
        '',
      ].join('\n'),
    );
    const client = spawnNatprox(
      [
        'client',
        '--config',
        path,
        '--proxy-url',
        `http://127.0.0.1:${proxyPort}`,
        '--name',
        'fromflag',
        '--label',
        'location=flag',
      ],
      (fn) => t.after(fn),
    );
    await client.waitFor(/"msg":"tunnel connected"/);
    const { body } = await httpGet(proxyPort, '/clients');
    const groups = JSON.parse(body) as Array<{ targets: string[]; labels: Record<string, string> }>;
    assert.equal(groups.length, 1, body);
    assert.deepEqual(groups[0]?.targets, [`fromflag:${target.port}`]);
    assert.equal(groups[0]?.labels.location, 'flag');
    assert.equal(groups[0]?.labels.rack, 'r1', 'labels from the file not overridden stay');
  });
});

describe('natprox token', { concurrency: true }, () => {
  it('prints a token and a token_sha256 line holding the sha256 of the token', async () => {
    const result = await natprox(['token']);
    assert.equal(result.code, 0, result.stderr);
    const token = /^token: (\S+)$/m.exec(result.stdout)?.[1];
    const hash = /^token_sha256: "([0-9a-f]{64})"$/m.exec(result.stdout)?.[1];
    assert.ok(token, `no "token:" line in:\n${result.stdout}`);
    assert.ok(hash, `no token_sha256 line in:\n${result.stdout}`);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
    assert.equal(createHash('sha256').update(token).digest('hex'), hash);
    const again = await natprox(['token']);
    assert.notEqual(/^token: (\S+)$/m.exec(again.stdout)?.[1], token, 'a new token each time');
  });

  it('the printed pair works: the proxy accepts the token by its hash and refuses another', async (t: TestContext) => {
    const { stdout } = await natprox(['token']);
    const token = /^token: (\S+)$/m.exec(stdout)?.[1] as string;
    const hashLine = /^token_sha256: .*$/m.exec(stdout)?.[0] as string;
    const config = await file(
      'proxy-tokens.yaml',
      `clients:\n  - names: [home]\n    ${hashLine}\n`,
    );
    const good = await file('good.token', `${token}\n`);
    const bad = await file('bad.token', 'not-the-token\n');
    const proxy = spawnNatprox(['proxy', '--config', config, '--listen', '127.0.0.1:0'], (fn) =>
      t.after(fn),
    );
    const listening = await proxy.waitFor(/"msg":"proxy listening"/);
    const proxyUrl = `http://127.0.0.1:${/:(\d+)"/.exec(listening)?.[1]}`;
    const base = ['client', '--proxy-url', proxyUrl, '--name', 'home', '--allow', '9100'];
    const accepted = spawnNatprox([...base, '--token-file', good], (fn) => t.after(fn));
    await accepted.waitFor(/"msg":"tunnel connected"/);
    const refused = spawnNatprox([...base, '--token-file', bad], (fn) => t.after(fn));
    const down = await refused.waitFor(/"msg":"tunnel down, reconnecting"/);
    assert.match(down, /HTTP 401/);
    assert.doesNotMatch(refused.output(), /tunnel connected/);
  });
});
