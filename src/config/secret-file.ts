import { lstatSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { ConfigError } from '../errors.js';

/** A secret file's contents, and what is worth a warning about how it is kept. */
export interface SecretFile {
  data: Buffer;
  warnings: string[];
}

/**
 * Reads a file that holds a secret (a client token, a private key), checking how it is kept
 * as ssh does: writable by group or others is refused (whoever can write it can swap the
 * secret, or read what replaced it), readable by others or reached through a symlink gets a
 * warning. Readable by its group is fine when root owns the file: root:natprox 0640 is how
 * the deployment gives the service user, and only it, access (PostgreSQL's rule for its
 * key); a group-readable file of another owner gets a warning. `what` names the file in
 * messages ("the token file"); `where` is the flag or config field.
 */
export function readSecretFile(path: string, what: string, where: string): SecretFile {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${where}: cannot read ${what}: ${(err as Error).message}`);
  }
  return { data, warnings: modeProblems(path, what, where) };
}

function modeProblems(path: string, what: string, where: string): string[] {
  // Windows has no such permission bits: Node reports fixed values there.
  if (process.platform === 'win32') return [];
  let link: Stats;
  let target: Stats;
  let real: string;
  try {
    link = lstatSync(path);
    target = statSync(path);
    real = realpathSync(path);
  } catch {
    return []; // gone since it was read: nothing to judge
  }
  const mode = target.mode & 0o777;
  const octal = mode.toString(8).padStart(4, '0');
  if ((mode & 0o022) !== 0) {
    const who = [mode & 0o020 ? 'its group' : '', mode & 0o002 ? 'everyone' : ''].filter(Boolean);
    throw new ConfigError(
      `${where}: ${what} ${real} is writable by ${who.join(' and ')} (mode ${octal}): whoever can write it can change the secret; run chmod go-w ${real} (0600, or 0640 owned by root with the service's group)`,
    );
  }
  const warnings: string[] = [];
  if (link.isSymbolicLink()) {
    warnings.push(
      `${where}: ${what} ${path} is a symlink to ${real}: whoever can change the link decides which file is read; give the file's own path`,
    );
  }
  if ((mode & 0o004) !== 0) {
    warnings.push(
      `${where}: ${what} ${real} is readable by everyone (mode ${octal}); run chmod o-r ${real}`,
    );
  } else if ((mode & 0o040) !== 0 && target.uid !== 0) {
    warnings.push(
      `${where}: ${what} ${real} is readable by its group (mode ${octal}); run chmod g-r ${real}, or make root its owner and the service's group its group (chown root:natprox, mode 0640)`,
    );
  }
  return warnings;
}
