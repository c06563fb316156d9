import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../auth/secret-hash.js';
import { TOKEN_HELP } from './help.js';
import { parseFlags } from './parse-flags.js';

export function tokenCommand(args: string[]): number {
  const flags = parseFlags('token', args, { help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    process.stdout.write(TOKEN_HELP);
    return 0;
  }
  const token = randomBytes(32).toString('base64url');
  process.stdout.write(
    `token: ${token}\n` +
      `# for the proxy config, under clients: (with the names this token may register)\n` +
      `token_sha256: "${sha256Hex(token)}"\n`,
  );
  return 0;
}
