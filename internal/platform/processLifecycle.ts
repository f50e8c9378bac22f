import { config as loadDotenv } from 'dotenv';
import { ConfigError, parseConfig, type Config } from './config.ts';
import type { Logger } from './logger.ts';

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
 * How long after the first stop signal a repeated one is taken as the same request. One Ctrl-C
 * reaches a process under `npm run` twice, a few milliseconds apart: from the terminal, which
 * signals its whole foreground process group, and from npm, which passes the signals it gets on to
 * its script (the tsx CLI, `npx tsx cmd/worker.ts`, relays them too, when it has not seen its
 * child take one within 30 ms). A repeat within this window changes nothing; only a later one
 * means "exit now".
 */
export const REPEATED_SIGNAL_WINDOW_MS = 3000;

/** Why a process stops: a signal, or the process that started it with an IPC channel is gone. */
export type StopCause = NodeJS.Signals | 'parent exited';

/**
 * Runs `shutdown` once, on the first SIGTERM or SIGINT or when the parent process that started
 * this one with an IPC channel (`npm start`) goes away, then exits 0 (1 if it threw).
 * A stop signal repeated more than `REPEATED_SIGNAL_WINDOW_MS` after the first exits at once with
 * 1, for an operator who does not want to wait; one within it is the same stop delivered twice.
 *
 * The parent is watched through the IPC channel rather than its pid: the kernel closes the channel
 * however the parent ends, SIGKILL included, and 'disconnect' fires at once, with no polling and no
 * pid to be reused. A process started without a channel (by a shell, npm, a supervisor, Docker) is
 * not tied to its parent, so `nohup` and the like keep working.
 */
export function onShutdownSignal(shutdown: (cause: StopCause) => Promise<void>, logger: Pick<Logger, 'info' | 'warn'>): void {
  let stoppingSince: number | undefined;
  const stop = (cause: StopCause) => {
    stoppingSince = Date.now();
    shutdown(cause).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppingSince === undefined) return stop(signal);
    if (Date.now() - stoppingSince < REPEATED_SIGNAL_WINDOW_MS) {
      logger.info({ signal }, `already stopping; a stop signal more than ${REPEATED_SIGNAL_WINDOW_MS / 1000} s after the first exits at once`);
      return;
    }
    logger.warn({ signal }, 'stop signal repeated: exiting at once, without finishing');
    process.exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (process.channel) {
    process.once('disconnect', () => {
      if (stoppingSince === undefined) stop('parent exited');
    });
  }
}
