import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

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
 * SIGTERM on. In the terminal's group, the API and the worker would get the SIGINT and then that
 * SIGTERM, and a second signal makes a stopping process quit at once, ungracefully.
 */
function runProcess(name: string, ownProcessGroup = false): ChildProcess {
  const args = compiled ? [path.join(here, `${name}.js`)] : ['--import', 'tsx', path.join(here, `${name}.ts`)];
  return spawn(process.execPath, args, {
    stdio: ownProcessGroup ? ['ignore', 'inherit', 'inherit'] : 'inherit',
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
let stopping = false;
const stopAll = () => {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);
// Outside the terminal's process group, the children no longer get its hangup themselves: pass it on.
process.on('SIGHUP', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGHUP');
});

const first = await Promise.race(exits);
stopAll();
const codes = await Promise.all(exits);
process.exit(first !== 0 ? first : Math.max(...codes));
