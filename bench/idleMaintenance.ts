/**
 * What idle workers cost PostgreSQL: starts N real `cmd/worker.ts` processes on an empty database
 * of their own, lets them settle, and counts the transactions they commit over a window
 * (`pg_stat_database.xact_commit` of that database; every statement a worker sends outside
 * `begin` is one transaction). Run it for one and for ten workers to see how maintenance scales:
 *
 *   npm run bench:idle -- --workers 1,10 --seconds 30 [--root <checkout>]
 *
 * `--root` runs another checkout's processes (with `node_modules` reachable from it), e.g. an older
 * commit unpacked with `git archive <commit> | tar -x -C /tmp/old`, to compare before and after.
 * The count includes everything an idle worker sends, the fan-out runner's polls too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import postgres from 'postgres';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,10' },
    seconds: { type: 'string', default: '30' },
    settle: { type: 'string', default: '10' },
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    'postgres-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const root = path.resolve(values.root);
const seconds = Number(values.seconds);
const settleSeconds = Number(values.settle);
const TSX = import.meta.resolve('tsx');

function databaseUrl(name: string): string {
  const url = new URL(values['postgres-url']);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `cmd/<script>.ts` of the checkout under test; resolves once a log line contains `ready` (or at exit when none is given). */
function start(script: string, env: Record<string, string>, ready?: string): { child: ChildProcess; started: Promise<void> } {
  const child = spawn(process.execPath, ['--import', TSX, path.join(root, 'cmd', `${script}.ts`)], {
    // Not the checkout: no developer `.env` may change what is measured.
    cwd: os.tmpdir(),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const started = new Promise<void>((resolve, reject) => {
    const watch = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready && output.includes(ready)) resolve();
    };
    child.stdout!.on('data', watch);
    child.stderr!.on('data', watch);
    child.once('exit', (code) => (code === 0 && !ready ? resolve() : reject(new Error(`${script} exited (${String(code)}):\n${output.slice(-2000)}`))));
  });
  return { child, started };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function commits(admin: postgres.Sql, database: string): Promise<number> {
  // A fresh snapshot of the cumulative statistics, not the one cached in this transaction.
  await admin`select pg_stat_clear_snapshot()`;
  const [row] = await admin<{ n: string }[]>`select xact_commit::text as n from pg_stat_database where datname = ${database}`;
  return Number(row?.n ?? 0);
}

/** Transactions per second `count` idle workers commit against a fresh database. */
async function measure(admin: postgres.Sql, count: number): Promise<number> {
  const database = `herald_idle_bench_${randomBytes(4).toString('hex')}`;
  const prefix = `idle-bench-${randomBytes(4).toString('hex')}`;
  await admin`create database ${admin(database)}`;
  const workers: ChildProcess[] = [];
  try {
    const env = {
      DATABASE_URL: databaseUrl(database),
      REDIS_URL: values['redis-url'],
      QUEUE_KEY: `${prefix}:queue`,
      DLQ_KEY: `${prefix}:dlq`,
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
    };
    await start('migrate', env).started;
    const running = Array.from({ length: count }, () => start('worker', env, 'worker started'));
    workers.push(...running.map((r) => r.child));
    await Promise.all(running.map((r) => r.started));
    // Pools connected, leadership settled, first runs of every job done.
    await sleep(settleSeconds * 1000);
    const before = await commits(admin, database);
    await sleep(seconds * 1000);
    const after = await commits(admin, database);
    return (after - before) / seconds;
  } finally {
    await Promise.all(workers.map(stop));
    await admin`drop database if exists ${admin(database)} with (force)`;
  }
}

const admin = postgres(values['postgres-url'], { max: 1, onnotice: () => {} });
try {
  process.stdout.write(`idle workers of ${root}, ${seconds} s window after ${settleSeconds} s settling\n`);
  for (const count of values.workers.split(',').map(Number)) {
    const perSecond = await measure(admin, count);
    process.stdout.write(`${String(count).padStart(3)} worker(s): ${perSecond.toFixed(1)} transactions/s (${(perSecond / count).toFixed(1)} per worker)\n`);
  }
} finally {
  await admin.end({ timeout: 5 });
}
