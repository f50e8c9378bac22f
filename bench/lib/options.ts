import path from 'node:path';
import { parseArgs } from 'node:util';

export const PHASES = ['ingest', 'drain', 'e2e', 'soak', 'memory'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  /** PostgreSQL URL of a user that may create databases (its database part is ignored). */
  postgresUrl: string;
  redisUrl: string;
  phases: Set<Phase>;
  /** Ingest: connections and seconds measured, after `warmupSeconds`. */
  connections: number;
  ingestSeconds: number;
  warmupSeconds: number;
  /** Drain: backlog size, worker processes, and total concurrency across them. */
  drain: number;
  workerProcesses: number;
  concurrency: number;
  /** End to end: seconds measured, and the offered rate (half the ingest peak unless given). */
  e2eSeconds: number;
  e2eRate: number | undefined;
  e2eMaxRate: number;
  soakSeconds: number;
  memoryBacklog: number;
  /** LOG_LEVEL of the processes under test (the product's default is info). */
  logLevel: string;
  keepLogs: boolean;
  resultsDir: string | undefined;
  /** PostgreSQL settings for this run's database only (`alter database ... set`), for what-if runs. */
  pgSettings: [string, string][];
  /** Where the processes under test write V8 CPU profiles (node --cpu-prof); none when undefined. */
  cpuProfileDir: string | undefined;
}

export const USAGE = `usage: npm run bench -- [options]

Measures herald against baselines run on the same machine in the same run, prints a table and
writes it as JSON to bench/results/. Needs PostgreSQL and Redis (see BENCH_DATABASE_URL,
BENCH_REDIS_URL below); creates a database herald_bench_* and keys herald_bench_*:, removed at the end.

phases (default: ingest, drain, e2e):
  --only LIST            comma-separated subset of ingest,drain,e2e,soak,memory
  --soak                 add the soak phase: ingest for --soak-seconds, rate per 10 s window
  --memory               add the memory phase: peak RSS of one worker draining --memory-backlog

ingest:
  --connections N        concurrent connections (default 64)
  --duration S           seconds measured per server (default 10)
  --warmup S             seconds of load before measuring (default 3)
drain:
  --drain N              backlog size (default 100000)
  --workers P            worker processes, for herald and for BullMQ (default 1)
  --concurrency C        total concurrency across the processes (default 50; a multiple of P)
end to end:
  --e2e-seconds S        seconds of load at the fixed rate (default 10)
  --e2e-rate R           offered requests/s (default: half the herald ingest rate measured)
  --e2e-max-rate R       cap on that default (default 5000)
long modes:
  --soak-seconds S       (default 60)
  --memory-backlog N     (default 1000000)
other:
  --log-level LEVEL      LOG_LEVEL of the herald processes (default info, the product default)
  --keep-logs            keep the processes' log files even when the run succeeds
  --results-dir DIR      where the JSON goes (default bench/results)
  --pg-set NAME=VALUE    a PostgreSQL setting for this run's database only, e.g. synchronous_commit=off
                         (repeatable; for what-if runs, recorded in the results)
  --cpu-prof DIR         each process under test (herald's and the baselines') writes a V8 CPU
                         profile into DIR when it stops, for Chrome DevTools or speedscope
  -h, --help

environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
             BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer (got "${value}")`);
  return n;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        only: { type: 'string' },
        soak: { type: 'boolean' },
        memory: { type: 'boolean' },
        connections: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        drain: { type: 'string' },
        workers: { type: 'string' },
        concurrency: { type: 'string' },
        'e2e-seconds': { type: 'string' },
        'e2e-rate': { type: 'string' },
        'e2e-max-rate': { type: 'string' },
        'soak-seconds': { type: 'string' },
        'memory-backlog': { type: 'string' },
        'log-level': { type: 'string' },
        'keep-logs': { type: 'boolean' },
        'results-dir': { type: 'string' },
        'pg-set': { type: 'string', multiple: true },
        'cpu-prof': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';

  let phases: Set<Phase>;
  if (v.only !== undefined) {
    const names = v.only.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = names.filter((n) => !(PHASES as readonly string[]).includes(n));
    if (unknown.length > 0 || names.length === 0) {
      throw new UsageError(`--only takes a comma-separated subset of ${PHASES.join(',')} (got "${v.only}")`);
    }
    phases = new Set(names as Phase[]);
  } else {
    phases = new Set<Phase>(['ingest', 'drain', 'e2e']);
  }
  if (v.soak) phases.add('soak');
  if (v.memory) phases.add('memory');

  const workerProcesses = positiveInt('workers', v.workers, 1);
  const concurrency = positiveInt('concurrency', v.concurrency, 50);
  if (concurrency % workerProcesses !== 0) {
    throw new UsageError(`--concurrency (${concurrency}) must be a multiple of --workers (${workerProcesses})`);
  }
  const logLevel = v['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new UsageError(`--log-level must be one of fatal, error, warn, info, debug, trace, silent (got "${logLevel}")`);
  }
  const pgSettings = (v['pg-set'] ?? []).map((pair): [string, string] => {
    const m = /^([a-z_][a-z0-9_.]*)=(.+)$/i.exec(pair);
    if (!m) throw new UsageError(`--pg-set takes NAME=VALUE (got "${pair}")`);
    return [m[1]!, m[2]!];
  });
  const e2eRate = v['e2e-rate'] === undefined ? undefined : positiveInt('e2e-rate', v['e2e-rate'], 0);

  return {
    postgresUrl: env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379',
    phases,
    connections: positiveInt('connections', v.connections, 64),
    ingestSeconds: positiveInt('duration', v.duration, 10),
    warmupSeconds: v.warmup === '0' ? 0 : positiveInt('warmup', v.warmup, 3),
    drain: positiveInt('drain', v.drain, 100_000),
    workerProcesses,
    concurrency,
    e2eSeconds: positiveInt('e2e-seconds', v['e2e-seconds'], 10),
    e2eRate,
    e2eMaxRate: positiveInt('e2e-max-rate', v['e2e-max-rate'], 5000),
    soakSeconds: positiveInt('soak-seconds', v['soak-seconds'], 60),
    memoryBacklog: positiveInt('memory-backlog', v['memory-backlog'], 1_000_000),
    logLevel,
    keepLogs: v['keep-logs'] ?? false,
    resultsDir: v['results-dir'],
    pgSettings,
    cpuProfileDir: v['cpu-prof'] === undefined ? undefined : path.resolve(v['cpu-prof']),
  };
}
