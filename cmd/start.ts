import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPEATED_SIGNAL_WINDOW_MS } from '../internal/platform/processLifecycle.ts';

/**
 * `npm start`: migrations, then one API and one worker process, their logs on this stdout. The
 * first SIGINT/SIGTERM is passed to both and waited for; if either exits on its own, the other is
 * stopped too and this exits with its code.
 */
const here = import.meta.dirname;
/**
 * Compiled (`node dist/cmd/start.js`), the other processes are the `.js` files beside this one and
 * Node runs them as they are; from the sources (`npm start`), they are `.ts` files tsx loads.
 */
const compiled = path.extname(import.meta.filename) === '.js';

/**
 * Starts `cmd/<name>` in the same form as this process. With `ownProcessGroup`, the child runs in
 * a process group of its own, so a terminal's Ctrl-C reaches only this process, which passes one
 * SIGTERM on; and it gets an IPC channel to this process, which it watches: when this process ends
 * in any way, SIGKILL of it or of its group included, the kernel closes the channel and the child
 * stops gracefully on its own (see onShutdownSignal), rather than run on holding the port.
 */
function runProcess(name: string, ownProcessGroup = false): ChildProcess {
  const args = compiled ? [path.join(here, `${name}.js`)] : ['--import', 'tsx', path.join(here, `${name}.ts`)];
  return spawn(process.execPath, args, {
    stdio: ownProcessGroup ? ['ignore', 'inherit', 'inherit', 'ipc'] : 'inherit',
    detached: ownProcessGroup,
  });
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

const migrationCode = await exited(runProcess('migrate'));
if (migrationCode !== 0) process.exit(migrationCode);

const children = [runProcess('api', true), runProcess('worker', true)];
// Taken at once: a child's 'exit' event fires only once, and one killed by a signal keeps a null
// exitCode, so waiting for it later could wait forever.
const exits = children.map(exited);
let stoppingSince: number | undefined;
const signalChildren = (signal: NodeJS.Signals) => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
/** Asks both children to stop, once. */
const stopAll = () => {
  if (stoppingSince !== undefined) return;
  stoppingSince = Date.now();
  signalChildren('SIGTERM');
};
/**
 * The first stop signal stops the children; a repeat within the window is the same Ctrl-C relayed
 * by npm, and a later one is passed on, so the children exit at once as they would if signalled
 * themselves.
 */
const onStopSignal = () => {
  if (stoppingSince === undefined) return stopAll();
  if (Date.now() - stoppingSince >= REPEATED_SIGNAL_WINDOW_MS) signalChildren('SIGTERM');
};
process.on('SIGINT', onStopSignal);
process.on('SIGTERM', onStopSignal);
// Outside the terminal's process group, the children no longer get its hangup themselves: pass it on.
process.on('SIGHUP', () => signalChildren('SIGHUP'));

const first = await Promise.race(exits);
stopAll();
const codes = await Promise.all(exits);
process.exit(first !== 0 ? first : Math.max(...codes));
