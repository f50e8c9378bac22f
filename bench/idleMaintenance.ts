/**
 * What idle workers cost PostgreSQL: starts N real `cmd/worker.ts` processes on an empty database
 * of their own (a `BenchEnvironment`, as `npm run bench` makes), lets them settle, and counts the
 * transactions committed in that database over a window (every statement a worker sends outside
 * `begin` is one transaction). Run it for one and for ten workers to see how maintenance scales:
 *
 *   npm run bench:idle -- --workers 1,10 --seconds 30 [--root <checkout>]
 *
 * `--root` runs another checkout's processes (with `node_modules` reachable from it), e.g. an older
 * commit unpacked with `git archive <commit> | tar -x -C /tmp/old`, to compare before and after.
 * The count includes everything an idle worker sends, the fan-out runner's polls too. PostgreSQL
 * and Redis are BENCH_DATABASE_URL and BENCH_REDIS_URL, as for `npm run bench`.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BenchEnvironment } from './lib/environment.ts';
import { BenchProcess, ROOT, stopAll } from './lib/processes.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,10' },
    seconds: { type: 'string', default: '30' },
    settle: { type: 'string', default: '10' },
    root: { type: 'string', default: ROOT },
  },
});
const root = path.resolve(values.root);
const seconds = Number(values.seconds);
const settleSeconds = Number(values.settle);
const postgresUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
const say = (line: string) => process.stdout.write(`${line}\n`);

/** Transactions per second `count` idle workers of `root` commit against a fresh database. */
async function measure(count: number): Promise<number> {
  // postgres.js connects lazily: an idle worker opens a few of its pool's connections (the jobs,
  // the fan-out poll) and one for the maintenance lock, not the pool's WORKER_CONCURRENCY + 3.
  const env = await BenchEnvironment.create(postgresUrl, redisUrl, count * 4 + 2, say);
  try {
    const processEnv = {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: redisUrl,
      QUEUE_KEY: env.key('queue'),
      DLQ_KEY: env.key('dlq'),
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
    };
    const script = (name: string) => path.join(root, 'cmd', `${name}.ts`);
    const migrate = BenchProcess.start('migrate', script('migrate'), processEnv, { cwd: env.logDir });
    const migrated = await migrate.exited;
    if (migrated.code !== 0) throw migrate.died('while migrating');
    const workers = Array.from({ length: count }, (_, i) =>
      BenchProcess.start(`worker-${i + 1}`, script('worker'), processEnv, { cwd: env.logDir }),
    );
    await Promise.all(workers.map((w) => w.waitForLog('worker started')));
    // Pools connected, leadership settled, first runs of every job done.
    await sleep(settleSeconds * 1000);
    const before = await env.transactions();
    await sleep(seconds * 1000);
    const after = await env.transactions();
    return (after - before) / seconds;
  } finally {
    await stopAll(15_000);
    for (const problem of await env.destroy(false)) say(problem);
  }
}

say(`idle workers of ${root}, ${seconds} s window after ${settleSeconds} s settling`);
for (const count of values.workers.split(',').map(Number)) {
  const perSecond = await measure(count);
  say(`${String(count).padStart(3)} worker(s): ${perSecond.toFixed(1)} transactions/s (${(perSecond / count).toFixed(1)} per worker)`);
}
