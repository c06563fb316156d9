import { ConfigError } from '../errors.js';
import { parseDurationMs } from '../util/duration.js';
import { parseHostPort, type HostPort } from '../util/host-port.js';

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export function flagDurationMs(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) {
    throw new ConfigError(
      `--${flag}: expected a duration such as "15s" or "500ms", got "${value}"`,
    );
  }
  return ms;
}

export function flagHostPort(flag: string, value: string): HostPort {
  const parsed = parseHostPort(value);
  if (typeof parsed === 'string') throw new ConfigError(`--${flag}: ${parsed}`);
  return parsed;
}
