import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { audit, type AuditInput } from './audit.ts';
import { createChaosEnvironment, LEASE_MS, type ChaosEnvironment } from './chaosEnvironment.ts';
import { FaultInjector, type AppliedFault } from './faultInjector.ts';
import { FAULT_KINDS, planFaults } from './faultSchedule.ts';
import type { Findings, Category } from './findings.ts';
import { FlakyReceiver } from './flakyReceiver.ts';
import { LoadGenerator, OPTED_OUT_USER, TOPIC, USERS } from './loadGenerator.ts';
import { iso } from './requestAudit.ts';
import { Supervisor } from './supervisor.ts';

export interface ChaosOptions {
  seconds: number;
  seed: number;
  /** Requests a second. */
  rate: number;
  /** A PostgreSQL URL whose user may create databases, and a Redis URL. */
  postgresUrl: string;
  redisUrl: string;
  /** Starts the run's database name and Redis key prefix. */
  namePrefix: string;
  /** Keep the processes' logs even when the run passes (they are kept when it fails). */
  keepLogs: boolean;
  say: (line: string) => void;
  /** Ends the run early (Ctrl-C): processes killed, database and keys removed, no audit. */
  signal?: AbortSignal;
}

export interface ChaosReport {
  seed: number;
  seconds: number;
  rate: number;
  requests: number;
  /** Answers by status over every try (`no answer` for a client error). */
  answers: Record<string, number>;
  /** Webhook deliveries the receiver accepted (2xx). */
  webhooksAccepted: number;
  faults: Record<string, { applied: number; skipped: number }>;
  processStarts: number;
  rowsByStatus: Record<string, number>;
  /** How long the rows took to settle after the faults stopped; undefined when they did not in time. */
  quiescedInMs: number | undefined;
  findings: Findings;
  failures: Category[];
  logDir: string | undefined;
}

/** How long the run waits for the processes to be back and for every row to settle, after the faults. */
const RESTART_TIMEOUT_MS = 60_000;
const QUIESCENCE_TIMEOUT_MS = 60_000;
const PROGRESS_EVERY_MS = 5000;

/**
 * One chaos run: two APIs and three workers behind proxies of the run's own, steady load, the
 * seed's faults for `seconds`; then the faults stop, everything is restarted, the rows settle, the
 * processes are stopped as an operator would, and the audit reads what happened.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { say } = options;
  const env = await createChaosEnvironment(options.postgresUrl, options.redisUrl, options.namePrefix, say);
  let receiver: FlakyReceiver | undefined;
  let supervisor: Supervisor | undefined;
  let failed = true;
  try {
    receiver = await FlakyReceiver.start(options.seed);
    say(`database ${env.databaseName}, Redis keys ${env.redisPrefix}*, logs in ${env.logDir}`);
    supervisor = await Supervisor.start(env);
    options.signal?.throwIfAborted();
    await setUpRecipients(supervisor.reachableApis()[0]!.url, receiver.url);
    say(`2 APIs and 3 workers up; load ${options.rate}/s and faults for ${options.seconds} s (seed ${options.seed})`);

    const load = new LoadGenerator(supervisor, receiver.url, options.seed, options.rate);
    const injector = new FaultInjector(supervisor, env);
    const startedAt = Date.now();
    const progress = setInterval(() => say(progressLine(startedAt, load, injector, supervisor!)), PROGRESS_EVERY_MS);
    const loadDone = load.run();
    void injector.run(planFaults(options.seed, options.seconds), startedAt);
    try {
      await sleep(options.seconds * 1000, undefined, { signal: options.signal });
    } finally {
      clearInterval(progress);
      load.stop();
    }
    await loadDone;
    await injector.stop();
    await load.settle();
    say(`faults over (${describeCounts(injector.counts())}); waiting for the processes and the rows to settle`);

    if (!(await supervisor.allUp(RESTART_TIMEOUT_MS))) say(`not every process was back within ${RESTART_TIMEOUT_MS / 1000} s`);
    const quiescedInMs = await quiesce(env, QUIESCENCE_TIMEOUT_MS);
    say(quiescedInMs === undefined ? `rows still moving after ${QUIESCENCE_TIMEOUT_MS / 1000} s` : `rows settled in ${(quiescedInMs / 1000).toFixed(1)} s`);
    await supervisor.stopAll();

    const input: AuditInput = {
      sql: env.sql,
      requests: load.requests,
      receiver,
      faults: injector.applied,
      instances: supervisor.instances,
      processFailures: supervisor.failures,
      leaseMs: LEASE_MS,
    };
    const result = await patiently(() => audit(input));
    await writeFile(path.join(env.logDir, 'faults.txt'), injector.applied.map(describeFault).join('\n') + '\n');
    const failures = result.findings.failures();
    failed = failures.length > 0;
    return {
      seed: options.seed,
      seconds: options.seconds,
      rate: options.rate,
      requests: load.requests.length,
      answers: load.answerCounts(),
      webhooksAccepted: receiver.acceptedCount(),
      faults: faultTally(injector),
      processStarts: supervisor.instances.length,
      rowsByStatus: result.rowsByStatus,
      quiescedInMs,
      findings: result.findings,
      failures,
      logDir: failed || options.keepLogs ? env.logDir : undefined,
    };
  } finally {
    supervisor?.killAll();
    await receiver?.close();
    for (const problem of await env.destroy(failed || options.keepLogs)) say(`cleanup: ${problem}`);
  }
}

/** Runs `read` again (up to 3 times, a few seconds apart) when the busy machine's PostgreSQL refuses the run's own connection. */
async function patiently<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(3000);
    }
  }
}

/** Profiles with the receiver's URL, an opted-out user, and the topic's subscribers. */
async function setUpRecipients(apiUrl: string, receiverUrl: string): Promise<void> {
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${apiUrl}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`PUT ${path} answered ${res.status}: ${await res.text()}`);
  };
  for (const user of [...USERS, OPTED_OUT_USER]) await put(`/users/${user}`, { webhook_url: receiverUrl });
  await put(`/users/${OPTED_OUT_USER}/preferences`, { opted_out: ['IN_APP', 'WEBHOOK'] });
  await put(`/topics/${TOPIC}/subscribers`, { user_ids: [...USERS] });
}

/** Waits until no row is PENDING or PROCESSING and no fan-out RUNNING; how long that took, or undefined. */
async function quiesce(env: ChaosEnvironment, timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    // A busy machine may refuse the run's own connection for a moment: that is no answer yet.
    const moving = await env.sql<{ moving: number }[]>`
      select (select count(*) from notifications where status in ('PENDING', 'PROCESSING'))::int
           + (select count(*) from fanouts where status = 'RUNNING')::int as moving`.then(
      ([row]) => row!.moving,
      () => undefined,
    );
    if (moving === 0) return Date.now() - started;
    await sleep(500);
  }
  return undefined;
}

function faultTally(injector: FaultInjector): ChaosReport['faults'] {
  const tally: ChaosReport['faults'] = {};
  for (const kind of FAULT_KINDS) tally[kind] = { applied: 0, skipped: 0 };
  for (const f of injector.applied) tally[f.kind]![f.skipped ? 'skipped' : 'applied']++;
  return tally;
}

function progressLine(startedAt: number, load: LoadGenerator, injector: FaultInjector, supervisor: Supervisor): string {
  const up = [...supervisor.slots.values()].filter((s) => s.up).length;
  return `${Math.round((Date.now() - startedAt) / 1000)} s: ${load.requests.length} requests (${describeCounts(load.answerCounts())}), ${load.inFlight} waiting; faults ${describeCounts(injector.counts()) || 'none yet'}; ${up}/${supervisor.slots.size} processes up`;
}

/** One line of the faults file kept with the logs: when, what, whom. */
function describeFault(f: AppliedFault): string {
  const worker = f.workerId ? ` worker ${f.workerId}` : '';
  return `${iso(f.startedAt)} → ${iso(f.endedAt)} ${f.kind} ${f.slots.join(',')}${worker}${f.skipped ? ` skipped: ${f.skipped}` : ''}`;
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
}
