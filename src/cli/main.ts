import { ConfigError } from '../errors.js';
import { VERSION } from '../version.js';
import { MAIN_HELP } from './help.js';
import { UsageError } from './usage-error.js';
import { installLeanAsyncResourceBind } from '../util/lean-async-bind.js';

type Command = (args: string[]) => Promise<number> | number;

/**
 * Each command is imported when it runs, not before: `natprox --version` and `--help` load
 * none of them, and the client does not load the proxy, check, demo or config code (on a
 * Raspberry Pi every module loaded stays resident; see bench/README.md, footprint).
 */
const loadProxy = async (): Promise<Command> => (await import('./proxy-command.js')).proxyCommand;
const loadClient = async (): Promise<Command> =>
  (await import('./client-command.js')).clientCommand;
const loadCheck = async (): Promise<Command> => (await import('./check-command.js')).checkCommand;
const loadDemo = async (): Promise<Command> => (await import('./demo-command.js')).demoCommand;
const loadToken = async (): Promise<Command> => (await import('./token-command.js')).tokenCommand;
const loadHashPassword = async (): Promise<Command> =>
  (await import('./hash-password-command.js')).hashPasswordCommand;
const loadConfig = async (): Promise<Command> =>
  (await import('./config-command.js')).configCommand;

const COMMANDS: Record<string, () => Promise<Command>> = {
  proxy: loadProxy,
  client: loadClient,
  check: loadCheck,
  demo: loadDemo,
  token: loadToken,
  'hash-password': loadHashPassword,
  config: loadConfig,
};

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(MAIN_HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[command];
  if (!load) {
    process.stderr.write(
      `natprox: unknown command "${command}"; commands are ${Object.keys(COMMANDS).join(', ')}. See natprox --help\n`,
    );
    return 2;
  }
  // Before anything opens an HTTP/2 stream: see lean-async-bind.ts.
  installLeanAsyncResourceBind();
  try {
    const run = await load();
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `natprox ${err.command}: ${err.message}\nSee natprox ${err.command} --help\n`,
      );
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`natprox ${command}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
