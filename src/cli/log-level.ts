import type { LevelWithSilent } from 'pino';
import { ConfigError } from '../errors.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function logLevel(flag: string | undefined): LevelWithSilent {
  const level = flag ?? process.env.NATPROX_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) {
    throw new ConfigError(`--log-level: expected one of ${LEVELS.join(', ')}, got "${level}"`);
  }
  return level as LevelWithSilent;
}
