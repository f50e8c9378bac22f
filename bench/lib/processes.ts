import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { BenchError } from './environment.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
const TSX = import.meta.resolve('tsx');
const EXIT_WITH_PARENT = pathToFileURL(path.join(import.meta.dirname, 'exitWithParent.ts')).href;

const MAX_LOG_READ = 1 << 20;

const live = new Set<BenchProcess>();
/** Node.js flags for every process started from now on (profiling). */
let childNodeArgs: string[] = [];

/** Makes every process started from now on write a V8 CPU profile into `dir` as it exits. */
export function profileChildren(dir: string): void {
  childNodeArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}
let started = 0;
// Whatever way this process ends, no child outlives it.
process.on('exit', () => {
  for (const child of live) child.killNow();
});

export interface StartOptions {
  /** Working directory; the run's log folder, so no developer `.env` is read by the processes under test. */
  cwd: string;
  /** An IPC channel to the child (`process.send`). */
  ipc?: boolean;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One child process of the benchmark: a `.ts` file run with tsx, its stdout and stderr in a log file
 * of its own (read only at start and at the end, so the benchmark spends no CPU on it meanwhile),
 * in a process group of its own so a terminal's Ctrl-C reaches only the benchmark, which stops it.
 */
export class BenchProcess {
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private logOffset = 0;
  private logText = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => {
      const ended = (exit: Exit) => {
        if (this.exit) return;
        this.exit = exit;
        live.delete(this);
        resolve(exit);
      };
      child.once('exit', (code, signal) => ended({ code, signal }));
      // Could not be started at all (no exit follows).
      child.once('error', (err) => {
        this.logText += `\ncould not start: ${err.message}`;
        ended({ code: null, signal: null });
      });
    });
  }

  static start(name: string, script: string, env: Record<string, string>, options: StartOptions): BenchProcess {
    // A file of its own per process started, numbered in start order.
    const logPath = path.join(options.cwd, `${String(++started).padStart(2, '0')}-${name}.log`);
    const fd = openSync(logPath, 'wx');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...childNodeArgs, '--import', TSX, '--import', EXIT_WITH_PARENT, path.resolve(ROOT, script)], {
        cwd: options.cwd,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: options.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const p = new BenchProcess(name, child, logPath);
    if (p.running) live.add(p);
    return p;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new BenchError(`${this.name} did not start (no pid)`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The log lines written since the last call, read from the file. */
  private readNewLog(): string {
    if (!existsSync(this.logPath)) return '';
    const fd = openSync(this.logPath, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.logOffset) return '';
      // Only the end of a long log is of use (its last lines); never read hundreds of MB at once.
      this.logOffset = Math.max(this.logOffset, size - MAX_LOG_READ);
      const buffer = Buffer.alloc(size - this.logOffset);
      readSync(fd, buffer, 0, buffer.length, this.logOffset);
      this.logOffset = size;
      const text = buffer.toString('utf8');
      this.logText = (this.logText + text).slice(-64_000);
      return text;
    } finally {
      closeSync(fd);
    }
  }

  /** The log file's lines, read as a stream (a worker's log can be hundreds of MB). */
  async *logLines(): AsyncGenerator<string> {
    if (!existsSync(this.logPath)) return;
    yield* createInterface({ input: createReadStream(this.logPath), crlfDelay: Infinity });
  }

  tail(lines = 15): string {
    this.readNewLog();
    return this.logText.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Resolves once a log line contains `needle`; fails naming the process if it exits or times out first. */
  async waitForLog(needle: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let carry = '';
    for (;;) {
      const text = carry + this.readNewLog();
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      const found = lines.find((l) => l.includes(needle));
      if (found) return found;
      if (!this.running) throw this.died(`before it logged "${needle}"`);
      if (Date.now() > deadline) throw new BenchError(`${this.name} did not log "${needle}" within ${timeoutMs} ms; its last lines:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** An error that names this process, how it ended, and its last log lines. */
  died(when: string): BenchError {
    const how = this.exit ? `exited (code ${this.exit.code}, signal ${this.exit.signal})` : 'stopped';
    return new BenchError(`${this.name} ${how} ${when}; its last lines (${this.logPath}):\n${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<Exit> {
    if (!this.running) return this.exit!;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killNow(), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  killNow(): void {
    if (this.running) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Current and peak resident set size in MiB, from /proc (Linux), or undefined where there is none. */
  memory(): { rssMb: number; peakMb: number } | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
      const rss = kb('VmRSS');
      const hwm = kb('VmHWM');
      if (!Number.isFinite(rss) || !Number.isFinite(hwm)) return undefined;
      return { rssMb: rss / 1024, peakMb: hwm / 1024 };
    } catch {
      return undefined;
    }
  }
}

/** Stops every child still running (used by the cleanup on failure or Ctrl-C). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `GET url` until it answers 200; fails naming `owner` if it exits or does not answer in time. */
export async function waitForHttp(owner: BenchProcess, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (!owner.running) throw owner.died(`before ${url} answered`);
    if (Date.now() > deadline) throw new BenchError(`${owner.name} did not answer ${url} within ${timeoutMs} ms; its last lines:\n${owner.tail()}`);
    await sleep(100);
  }
}
