import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage-error.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  'log-level': { type: 'string' },
} as const satisfies Options;

/** util.parseArgs with errors turned into UsageErrors that name the command. */
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>['values'];

export function parseFlags<O extends Options>(
  command: string,
  args: string[],
  options: O,
): Parsed<O> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
}
