/**
 * `npm run bench`: herald against baselines measured in the same run on the same machine (see
 * `--help`). Creates its own database and Redis key prefix, starts the real processes, prints a
 * table and writes it as JSON to bench/results/. Everything it started or created is removed at the
 * end, also on failure or Ctrl-C.
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drainBullmq } from './bullmqDrain.ts';
import { drainHerald } from './drain.ts';
import { endToEnd } from './endToEnd.ts';
import { ingest, soak } from './ingest.ts';
import { fmt, type BenchContext } from './lib/context.ts';
import { BenchEnvironment, BenchError } from './lib/environment.ts';
import { parseOptions, USAGE, UsageError, type BenchOptions } from './lib/options.ts';
import { profileChildren, stopAll } from './lib/processes.ts';
import { machineFacts, renderTable, revision, writeResults, type BenchResults } from './lib/report.ts';
import { ratio } from './lib/stats.ts';

const started = Date.now();
const say = (line: string) => {
  process.stdout.write(`[${String(Math.round((Date.now() - started) / 1000)).padStart(3)} s] ${line}\n`);
};

let options: BenchOptions;
try {
  const parsed = parseOptions(process.argv.slice(2), process.env);
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  options = parsed;
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${err.message}\n\n${USAGE}\n`);
  process.exit(2);
}

/** Connections the busiest phase holds: an API's pool, the workers' pools, this process and its admin. */
const neededConnections = 10 + options.concurrency + 2 * options.workerProcesses + 6;
const loadAtStart = os.loadavg()[0]!;

let env: BenchEnvironment | undefined;
let cleaning: Promise<void> | undefined;
let failed = false;
/** Logs are kept when a run fails (not when it is interrupted), to see why. */
let keepLogsOfFailure = false;

/** Stops every process, drops the database, deletes the keys; once, whichever way the run ends. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll(3000);
    if (!env) return;
    const keepLogs = options.keepLogs || keepLogsOfFailure;
    const problems = await env.destroy(keepLogs);
    for (const p of problems) say(`cleanup: ${p}`);
    if (problems.length === 0) say(`cleanup: processes stopped, database ${env.databaseName} dropped, keys ${env.redisPrefix}* deleted`);
    if (keepLogs) say(`logs of the processes: ${env.logDir}`);
  })();
  return cleaning;
}

let interrupted = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // The same Ctrl-C often arrives twice (from the terminal and relayed by tsx): only a later
      // one means "leave now" (the children are still killed on exit).
      if (Date.now() - interrupted > 2000) process.exit(130);
      return;
    }
    interrupted = Date.now();
    failed = true;
    say(`${signal}: stopping the processes and removing the database and keys (Ctrl-C again to leave at once)`);
    void cleanUp().finally(() => process.exit(130));
  });
}

try {
  say(`herald benchmark: phases ${[...options.phases].join(', ')}`);
  if (options.cpuProfileDir) {
    await mkdir(options.cpuProfileDir, { recursive: true });
    profileChildren(options.cpuProfileDir);
    say(`CPU profiles of the processes under test go to ${options.cpuProfileDir}`);
  }
  env = await BenchEnvironment.create(options.postgresUrl, options.redisUrl, neededConnections, say, options.pgSettings);
  await env.migrate();
  say(`database ${env.databaseName} created and migrated; Redis keys under ${env.redisPrefix}`);
  const ctx: BenchContext = { env, options, say };
  const facts = await env.serverFacts();
  const results: BenchResults = {
    schema: 1,
    startedAt: new Date(started).toISOString(),
    runSeconds: 0,
    machine: machineFacts(facts, loadAtStart),
    revision: revision(),
    settings: {
      connections: options.connections,
      ingestSeconds: options.ingestSeconds,
      warmupSeconds: options.warmupSeconds,
      drainBacklog: options.drain,
      workerProcesses: options.workerProcesses,
      concurrency: options.concurrency,
      e2eSeconds: options.e2eSeconds,
      logLevel: options.logLevel,
      ...(options.pgSettings.length > 0 ? { postgresSettingsForThisRun: options.pgSettings.map(([k, v]) => `${k}=${v}`).join(', ') } : {}),
    },
  };

  if (options.phases.has('ingest')) {
    const naive = await ingest(ctx, 'naive');
    const herald = await ingest(ctx, 'herald');
    results.ingest = { herald, naive, ratio: ratio(herald.rps, naive.rps) };
  }
  if (options.phases.has('drain')) {
    const { drain, workerProcesses, concurrency } = options;
    const herald = await drainHerald(ctx, drain, workerProcesses, concurrency);
    await env.reset();
    const bullmq = await drainBullmq(ctx, drain, workerProcesses, concurrency);
    results.drain = { herald, bullmq, ratio: ratio(herald.perSecond, bullmq.perSecond) };
  }
  if (options.phases.has('e2e')) {
    let rate = options.e2eRate;
    if (rate === undefined) {
      const peak = results.ingest?.herald.rps;
      if (peak === undefined) throw new BenchError('e2e needs the ingest peak to pick its rate: run the ingest phase too, or give --e2e-rate');
      rate = Math.max(1, Math.min(options.e2eMaxRate, Math.round(peak / 2)));
    }
    results.endToEnd = await endToEnd(ctx, rate);
  }
  if (options.phases.has('soak')) {
    const naive = await soak(ctx, 'naive');
    const herald = await soak(ctx, 'herald');
    results.soak = { herald, naive };
  }
  if (options.phases.has('memory')) {
    results.memory = await drainHerald(ctx, options.memoryBacklog, 1, options.concurrency, 'memory', 10);
  }

  results.runSeconds = Math.round((Date.now() - started) / 1000);
  results.machine.loadAverage.end = Number(os.loadavg()[0]!.toFixed(2));
  const file = await writeResults(results, options.resultsDir ?? path.join(import.meta.dirname, 'results'));
  process.stdout.write(`\n${renderTable(results)}\n\n`);
  say(`results written to ${path.relative(process.cwd(), file)}`);
} catch (err) {
  if (!interrupted) {
    failed = true;
    keepLogsOfFailure = true;
    if (err instanceof BenchError) say(`benchmark failed: ${err.message}`);
    else say(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
} finally {
  if (!interrupted) {
    await cleanUp();
    say(`done in ${fmt((Date.now() - started) / 1000)} s`);
    process.exit(failed ? 1 : 0);
  }
}
