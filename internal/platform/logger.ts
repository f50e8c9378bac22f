import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/** One JSON logger per process; units of work take `logger.child({...})`. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, process: string): Logger {
  return pino({
    level: config.LOG_LEVEL,
    base: { process },
    // Secrets never reach the logs, wherever an object carrying one is logged.
    redact: {
      paths: [
        '*.password',
        '*.secret',
        '*.token',
        '*.key',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
        '*.access_token',
      ],
      censor: '[redacted]',
    },
  });
}
