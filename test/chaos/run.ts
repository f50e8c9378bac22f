/**
 * `npm run chaos -- --seconds N [--seed S] [--rate R] [--keep-logs]`: two APIs and three workers
 * under steady load and seeded faults, then an audit of what was accepted, stored, delivered and
 * repeated. Prints progress and a final table; exits 1 when the audit found a failure, 2 on bad
 * arguments. Uses the local PostgreSQL and Redis (or CHAOS_DATABASE_URL / CHAOS_REDIS_URL), in a
 * database and under a key prefix of its own, removed at the end.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { runChaos, type ChaosReport } from './chaosRun.ts';
import { renderReport, repeatCommand } from './reportTable.ts';

const USAGE = 'usage: npm run chaos -- --seconds N [--seed S] [--rate R] [--keep-logs]';
const started = Date.now();
const say = (line: string) => process.stdout.write(`[${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${line}\n`);

function positiveInt(name: string, text: string | undefined, fallback?: number): number {
  if (text === undefined && fallback !== undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || (n === 0 && name !== 'seed')) {
    process.stderr.write(`--${name} must be a ${name === 'seed' ? 'non-negative' : 'positive'} integer, got ${String(text)}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

let values: { seconds?: string; seed?: string; rate?: string; 'keep-logs'?: boolean };
try {
  ({ values } = parseArgs({
    options: { seconds: { type: 'string' }, seed: { type: 'string' }, rate: { type: 'string' }, 'keep-logs': { type: 'boolean' } },
  }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}

const options = {
  seconds: positiveInt('seconds', values.seconds),
  seed: positiveInt('seed', values.seed, randomInt(0, 2 ** 31)),
  rate: positiveInt('rate', values.rate, 100),
};

// Ctrl-C ends the run early but still stops the processes and removes the database and keys. The
// same Ctrl-C often arrives twice (from the terminal and relayed by tsx): only a later one means
// "leave now".
const interrupt = new AbortController();
let interruptedAt = 0;
process.on('SIGINT', () => {
  if (interruptedAt && Date.now() - interruptedAt > 2000) process.exit(130);
  if (interruptedAt) return;
  interruptedAt = Date.now();
  say('SIGINT: stopping the processes and removing the database and keys (Ctrl-C again to leave at once)');
  interrupt.abort();
});

let report: ChaosReport;
try {
  report = await runChaos({
    ...options,
    postgresUrl: process.env.CHAOS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: process.env.CHAOS_REDIS_URL ?? 'redis://127.0.0.1:6379',
    namePrefix: 'herald',
    keepLogs: values['keep-logs'] ?? false,
    say,
    signal: interrupt.signal,
  });
} catch (err) {
  if (interruptedAt) {
    say('interrupted; processes stopped, database and keys removed');
    process.exit(130);
  }
  say(`chaos run failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)} (repeat: ${repeatCommand(options)})`);
  process.exit(1);
}

process.stdout.write(`\n${renderReport(report)}\n\n`);
if (report.logDir) say(`logs of the processes: ${report.logDir}`);
if (report.failures.length > 0) {
  say(`FAILED: ${report.failures.join(', ')} (repeat: ${repeatCommand(report)})`);
  process.exit(1);
}
say('passed: nothing lost, stuck, stored behind a refusal or repeated without a fault; no process died on its own');
process.exit(0);
