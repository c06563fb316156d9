import { sha256Hex } from '../auth/secret-hash.js';
import { NatproxError } from '../errors.js';
import { readLimited } from '../util/read-limited.js';
import { HASH_PASSWORD_HELP } from './help.js';
import { parseFlags } from './parse-flags.js';
import { UsageError } from './usage-error.js';

/** Longest password read; anything longer is surely not a password typed or piped in. */
const MAX_PASSWORD_BYTES = 4096;

export async function hashPasswordCommand(args: string[]): Promise<number> {
  const flags = parseFlags('hash-password', args, { help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    process.stdout.write(HASH_PASSWORD_HELP);
    return 0;
  }
  const text = process.stdin.isTTY ? await promptHidden('Password: ') : await readAll();
  const password = text.replace(/\r?\n$/, '');
  if (password === '') {
    throw new UsageError(
      'no password on stdin: pipe one in, e.g. printf %s "$PASSWORD" | natprox hash-password',
      'hash-password',
    );
  }
  process.stdout.write(
    `# for the proxy config, under scrapers: or operators:, next to username:\n` +
      `password_sha256: "${sha256Hex(password)}"\n`,
  );
  return 0;
}

async function readAll(): Promise<string> {
  try {
    const text = await readLimited(process.stdin, MAX_PASSWORD_BYTES, { onOver: 'reject' });
    return text.toString('utf8');
  } catch (err) {
    if (err instanceof NatproxError && err.code === 'NATPROX_BODY_TOO_LARGE') {
      throw new UsageError(
        `stdin holds over ${MAX_PASSWORD_BYTES} bytes; expected one password`,
        'hash-password',
      );
    }
    throw err;
  }
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n' || char === '\u0004') {
          finish();
          resolve(line);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new UsageError('cancelled', 'hash-password'));
          return;
        }
        if (char === '\u007f' || char === '\b') line = line.slice(0, -1);
        else line += char;
      }
    };
    stdin.on('data', onData);
  });
}
