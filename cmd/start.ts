import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/**
 * `npm start`: migrations, then one API and one worker process, their logs on this stdout. The
 * first SIGINT/SIGTERM is passed to both and waited for; if either exits on its own, the other is
 * stopped too and this exits with its code.
 */
const here = import.meta.dirname;

function runTs(file: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(here, file)], { stdio: 'inherit' });
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

const migrationCode = await exited(runTs('migrate.ts'));
if (migrationCode !== 0) process.exit(migrationCode);

const children = [runTs('api.ts'), runTs('worker.ts')];
let stopping = false;
const stopAll = () => {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
};
// Ctrl-C reaches the children from the terminal too; they ignore the repeat while stopping.
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);

const first = await Promise.race(children.map(exited));
stopAll();
const codes = await Promise.all(children.map((c) => (c.exitCode !== null ? c.exitCode : exited(c))));
process.exit(first !== 0 ? first : Math.max(...codes));
