import { ConfigError } from '../errors.js';
import { VERSION } from '../version.js';
import { checkCommand } from './check-command.js';
import { clientCommand } from './client-command.js';
import { configCommand } from './config-command.js';
import { demoCommand } from './demo-command.js';
import { hashPasswordCommand } from './hash-password-command.js';
import { MAIN_HELP } from './help.js';
import { proxyCommand } from './proxy-command.js';
import { tokenCommand } from './token-command.js';
import { UsageError } from './usage-error.js';
import { installLeanAsyncResourceBind } from '../util/lean-async-bind.js';

const COMMANDS: Record<string, (args: string[]) => Promise<number> | number> = {
  proxy: proxyCommand,
  client: clientCommand,
  check: checkCommand,
  demo: demoCommand,
  token: tokenCommand,
  'hash-password': hashPasswordCommand,
  config: configCommand,
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
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(
      `natprox: unknown command "${command}"; commands are ${Object.keys(COMMANDS).join(', ')}. See natprox --help\n`,
    );
    return 2;
  }
  // Before anything opens an HTTP/2 stream: see lean-async-bind.ts.
  installLeanAsyncResourceBind();
  try {
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
