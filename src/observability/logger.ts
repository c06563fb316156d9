import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * One JSON line per event; a readable, coloured format when stderr is a terminal.
 * Logs go to stderr so stdout stays free for what a command prints.
 */
export function createLogger(options: { level?: LevelWithSilent; pretty?: boolean } = {}): Logger {
  const level = options.level ?? ((process.env.NATPROX_LOG_LEVEL as LevelWithSilent) || 'info');
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  if (pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}
