import { config as loadDotenv } from 'dotenv';
import { ConfigError, parseConfig, type Config } from './config.ts';

/**
 * The configuration from the environment and `.env` (the environment wins). A bad value ends the
 * process with one line naming the variable.
 */
export function loadConfigOrExit(): Config {
  loadDotenv({ quiet: true });
  try {
    return parseConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(1);
  }
}

/**
 * Runs `shutdown` once on the first SIGTERM or SIGINT, then exits 0 (1 if it threw). A second signal
 * while shutting down exits at once, for an operator who does not want to wait.
 */
export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let shuttingDown = false;
  const handle = (signal: NodeJS.Signals) => {
    if (shuttingDown) process.exit(1);
    shuttingDown = true;
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
