/**
 * The Debian binaries the end-to-end tests run. When one is missing the tests fail with the
 * package names (npm test installs them with scripts/ensure-debian-packages.sh); they never
 * skip.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** command → Debian package that provides it (bookworm: prometheus 2.42, node_exporter 1.5). */
export const DEBIAN_PACKAGE_OF = {
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-node-exporter': 'prometheus-node-exporter',
  nginx: 'nginx-light',
} as const;

export type DebianCommand = keyof typeof DEBIAN_PACKAGE_OF;

function findOnPath(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Absolute paths of `commands`; throws one error naming every missing Debian package. */
export function requireDebianBinaries<C extends DebianCommand>(
  commands: readonly C[],
): Record<C, string> {
  const found = {} as Record<C, string>;
  const missing: C[] = [];
  for (const command of commands) {
    const path = findOnPath(command);
    if (path === undefined) missing.push(command);
    else found[command] = path;
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((command) => DEBIAN_PACKAGE_OF[command]))];
    throw new Error(
      `the end-to-end tests need ${missing.join(', ')} from the Debian package${packages.length > 1 ? 's' : ''} ${packages.join(' and ')}, ` +
        `which ${missing.length > 1 ? 'are' : 'is'} not installed: apt-get install -y ${packages.join(' ')} ` +
        `(npm test installs them through scripts/ensure-debian-packages.sh)`,
    );
  }
  return found;
}
