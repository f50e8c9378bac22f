import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

/** `env` on top of a minimal environment: no developer `.env` or npm setting leaks in. */
function processEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env };
}

/**
 * A real `cmd/*.ts` process under test. Its JSON log lines are collected so a test can wait for
 * one; anything else it prints is kept as `{ msg: line }`.
 */
export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Settles once the process exited and its output is closed: all it printed (and any process that
   * shares its output, as npm's script does) is in `logs`. 'exit' may come before the last lines.
   */
  readonly closed: Promise<void>;
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) this.receive(line);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  }

  /**
   * Starts `cmd/<script>.ts` with `env` on top of a minimal environment (no developer `.env` leaks in).
   * With `ownProcessGroup`, the process leads a process group of its own, as a command started from
   * a terminal does, so `signalGroup` can deliver a signal the way Ctrl-C does. With `compiled`, it
   * starts `dist/cmd/<script>.js` (`npm run build`) with plain Node, as the Docker image does.
   */
  static start(
    script: string,
    env: Record<string, string>,
    args: string[] = [],
    options: { ownProcessGroup?: boolean; compiled?: boolean } = {},
  ): ServiceProcess {
    const entry = options.compiled ? [path.join(ROOT, 'dist', 'cmd', `${script}.js`)] : ['--import', 'tsx', path.join(ROOT, 'cmd', `${script}.ts`)];
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: ROOT,
      env: processEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup ?? false,
    });
    return new ServiceProcess(script, child);
  }

  /**
   * Runs `npm run <script>` in the project, as the README tells an operator to: `child` is npm,
   * which starts the script through a shell (that the script's `exec` replaces). Its logs arrive
   * here as `start`'s do, after npm's banner lines. With `ownProcessGroup`, npm leads a process group of its own, as a command
   * started from a terminal does, so `signalGroup` delivers a signal the way Ctrl-C does.
   */
  static npmRun(script: string, env: Record<string, string>, options: { ownProcessGroup?: boolean } = {}): ServiceProcess {
    const child = spawn('npm', ['run', script], {
      cwd: ROOT,
      env: processEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup ?? false,
    });
    return new ServiceProcess(`npm run ${script}`, child);
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The exit, or a rejection naming the process when it does not exit within `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms; last lines:\n${this.output.slice(-15).join('\n')}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `signal` to every process in the group this process leads (started with
   * `ownProcessGroup`), the way a terminal delivers Ctrl-C to a foreground command and its children.
   */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    process.kill(-this.child.pid, signal);
  }

  /** Resolves with the first log line (already seen or still to come) that `match` accepts. */
  waitForLog(match: string | RegExp | ((l: LogLine) => boolean), timeoutMs = 20_000): Promise<LogLine> {
    const test =
      typeof match === 'function' ? match : (l: LogLine) => (typeof match === 'string' ? l.msg === match : match.test(l.msg ?? ''));
    const seen = this.logs.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no log line matching ${String(match)} within ${timeoutMs} ms; last lines:\n${this.output.slice(-15).join('\n')}`));
      }, timeoutMs);
      const exitWatch = this.closed.then(() => {
        clearTimeout(timer);
        const { exitCode, signalCode } = this.child;
        reject(new Error(`${this.name} exited (code ${exitCode}, signal ${signalCode}) before logging ${String(match)}:\n${this.output.slice(-15).join('\n')}`));
      });
      void exitWatch;
      this.waiters.push({
        match: test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`: a stop for cleanup that cannot hang. */
  async stopWithin(timeoutMs = 15_000): Promise<void> {
    this.signal('SIGTERM');
    await this.exitWithin(timeoutMs).catch(() => this.kill());
  }

  /** SIGKILL: the process gets no chance to clean up. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  private receive(line: string): void {
    if (!line.trim()) return;
    this.output.push(line);
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      parsed = { msg: line };
    }
    this.logs.push(parsed);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(parsed)) return true;
      w.resolve(parsed);
      return false;
    });
  }
}

/** Whether a process with this pid exists (a process of the test's, or one it started). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a one-shot script (`cmd/dlq.ts`, `cmd/migrate.ts`) to its end; returns its exit code and
 * output. One that has not ended within `timeoutMs` is killed and the call rejects.
 */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 45_000,
  options: { compiled?: boolean } = {},
): Promise<{ code: number | null; stdout: string }> {
  const p = ServiceProcess.start(script, env, args, options);
  try {
    const { code } = await p.exitWithin(timeoutMs);
    return { code, stdout: p.output.join('\n') };
  } finally {
    if (p.running) await p.kill();
  }
}
