import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_APPLICATION_NAME, BenchError, type BenchEnvironment } from './environment.ts';
import type { BenchOptions } from './options.ts';
import { BenchProcess, freePort, waitForHttp } from './processes.ts';

export interface BenchContext {
  env: BenchEnvironment;
  options: BenchOptions;
  /** Prints a progress line. */
  say: (line: string) => void;
}

/** The Redis list herald's processes use in this run. */
export function queueKey(ctx: BenchContext): string {
  return ctx.env.key('queue');
}

/**
 * The environment of a herald process: this run's database and keys, everything else at the
 * product's defaults (the processes run in the log folder, so no `.env` is read).
 */
export function heraldEnv(ctx: BenchContext, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: ctx.env.databaseUrl,
    REDIS_URL: ctx.env.redisUrl,
    QUEUE_KEY: queueKey(ctx),
    DLQ_KEY: ctx.env.key('dlq'),
    LOG_LEVEL: ctx.options.logLevel,
    // Only shortens the benchmark's own stops between phases.
    SHUTDOWN_GRACE_MS: '2000',
    // The naive baseline checks no API key either; a checked key costs a SHA-256 and a cache hit.
    AUTH_DISABLED: 'true',
    RATE_LIMIT_IP_PER_SECOND: '0',
    METRICS_PORT: '0',
    ...extra,
  };
}

/** Starts the real `cmd/api.ts`; resolves once `/healthz` answers. */
export async function startHeraldApi(ctx: BenchContext): Promise<{ api: BenchProcess; url: string }> {
  const port = await freePort();
  const api = BenchProcess.start('api', 'cmd/api.ts', heraldEnv(ctx, { PORT: String(port) }), { cwd: ctx.env.logDir });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(api, `${url}/healthz`);
  return { api, url };
}

/** Starts the naive baseline route; resolves once `/healthz` answers. */
export async function startNaiveApi(ctx: BenchContext): Promise<{ api: BenchProcess; url: string }> {
  const port = await freePort();
  const api = BenchProcess.start(
    'naive-api',
    'bench/naiveApi.ts',
    { DATABASE_URL: ctx.env.databaseUrl, REDIS_URL: ctx.env.redisUrl, PORT: String(port), QUEUE_KEY: ctx.env.key('naive-queue') },
    { cwd: ctx.env.logDir },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(api, `${url}/healthz`);
  return { api, url };
}

const LEVELS_WITH_START_LINE = new Set(['trace', 'debug', 'info']);

/**
 * Starts `processes` real `cmd/worker.ts` processes sharing `concurrency`; resolves once each runs:
 * its "worker started" line, or, at log levels that hide it, its first connection to the database.
 */
export async function startHeraldWorkers(
  ctx: BenchContext,
  processes: number,
  concurrency: number,
  tag = 'worker',
): Promise<BenchProcess[]> {
  const perProcess = concurrency / processes;
  const workers = Array.from({ length: processes }, (_, i) =>
    BenchProcess.start(`${tag}-${i + 1}`, 'cmd/worker.ts', heraldEnv(ctx, { WORKER_CONCURRENCY: String(perProcess) }), {
      cwd: ctx.env.logDir,
    }),
  );
  if (LEVELS_WITH_START_LINE.has(ctx.options.logLevel)) {
    await Promise.all(workers.map((w) => w.waitForLog('"worker started"')));
  } else {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [row] = await ctx.env.sql<{ n: number }[]>`
        select count(distinct client_port)::int as n from pg_stat_activity
        where datname = current_database() and application_name <> ${BENCH_APPLICATION_NAME}`;
      if ((row?.n ?? 0) >= processes) break;
      const dead = workers.find((w) => !w.running);
      if (dead) throw dead.died('while starting');
      if (Date.now() > deadline) throw new BenchError(`the workers did not connect to PostgreSQL within 30 s; see ${ctx.env.logDir}`);
      await sleep(50);
    }
    await sleep(500);
  }
  return workers;
}

/** Throws naming the first of `processes` that is no longer running. */
export function assertRunning(processes: BenchProcess[], when: string): void {
  const dead = processes.find((p) => !p.running);
  if (dead) throw dead.died(when);
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
