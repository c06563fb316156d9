import { runCheck } from '../check/runner.js';
import { CLIENT_FLAGS } from './client-flags.js';
import { CHECK_HELP } from './help.js';
import { parseFlags } from './parse-flags.js';

/** `natprox check`: the client's flags and config, walked step by step instead of run. */
export async function checkCommand(args: string[]): Promise<number> {
  const flags = parseFlags('check', args, CLIENT_FLAGS);
  if (flags.help) {
    process.stdout.write(CHECK_HELP);
    return 0;
  }
  return runCheck(flags, { write: (line) => process.stdout.write(`${line}\n`) });
}
