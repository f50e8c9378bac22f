import { setTimeout as sleep } from 'node:timers/promises';
import { insertBacklog } from './lib/backlog.ts';
import { assertRunning, fmt, queueKey, startHeraldWorkers, type BenchContext } from './lib/context.ts';
import { CpuMeter, describeCpu, interference, type CpuUse } from './lib/cpu.ts';
import { BenchError } from './lib/environment.ts';
import type { BenchProcess } from './lib/processes.ts';
import { round } from './lib/stats.ts';

export interface DrainResult {
  backlog: number;
  processes: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  /** Highest peak RSS (VmHWM) of one worker process, MiB. */
  peakRssMb: number | undefined;
  /** RSS of the worker once started, before any work, MiB. */
  startRssMb: number | undefined;
  /** From the start of the drain until it was seen complete. */
  cpu: CpuUse;
}

export interface HeraldDrainResult extends DrainResult {
  /**
   * Ids the maintenance leader's due-row scheduler queued (again) during the run, from its log
   * lines (the name is older than the scheduler; kept so results stay comparable).
   */
  requeuedBySweeper: number;
  /** Entries still on the queue when the last row was SENT (duplicates, dropped later as stale). */
  leftoverQueueEntries: number;
  /** Checks that every row went through the whole lifecycle. */
  sent: number;
  inboxItems: number;
  sentAttempts: number;
  /** PostgreSQL transactions per notification, maintenance and the benchmark's polls included. */
  transactionsPerNotification: number;
  /** RSS of the worker every `rssEverySeconds` while draining, MiB (memory mode). */
  rssSeriesMb?: number[];
}

/** Stops waiting when nothing more is SENT for this long. */
const STALL_MS = 60_000;

/**
 * herald's workers drain a backlog of `backlog` queued IN_APP notifications. The backlog is
 * queued under a staging key while the workers start, then renamed into their queue (one atomic
 * step), which starts the clock; it stops at the last row's sent_at.
 */
export async function drainHerald(
  ctx: BenchContext,
  backlog: number,
  processes: number,
  concurrency: number,
  label = 'drain',
  rssEverySeconds = 0,
): Promise<HeraldDrainResult> {
  const { env } = ctx;
  await env.reset();
  const staging = env.key('staging');
  ctx.say(`${label}: inserting ${fmt(backlog)} PENDING IN_APP notifications and queueing their ids`);
  await insertBacklog(ctx, backlog, staging);
  await env.settle();

  const transactionsBefore = await env.transactions();
  ctx.say(`${label}: starting ${processes} herald worker process(es), WORKER_CONCURRENCY ${concurrency / processes} each`);
  const workers = await startHeraldWorkers(ctx, processes, concurrency);
  try {
    const startRss = maxOf(workers.map((w) => w.memory()?.rssMb));
    const meter = CpuMeter.start(workers.map((w) => w.pid));
    const t0 = Date.now();
    await env.redis.rename(staging, queueKey(ctx));
    ctx.say(`${label}: draining`);

    let sent = 0;
    let lastProgress = Date.now();
    let lastReport = Date.now();
    let lastRss = Date.now();
    const rssSeries: number[] = [];
    while (sent < backlog) {
      await sleep(sent === 0 ? 200 : 1000);
      assertRunning(workers, 'while draining');
      const [row] = await env.sql<{ n: number }[]>`select count(*)::int as n from notifications where status = 'SENT'`;
      const now = Date.now();
      if (row!.n > sent) lastProgress = now;
      sent = row!.n;
      if (now - lastProgress > STALL_MS) {
        throw new BenchError(`${label} stalled: ${sent} of ${backlog} SENT and none for ${STALL_MS / 1000} s; see the worker logs in ${env.logDir}`);
      }
      if (now - lastReport >= 5000 || sent >= backlog) {
        lastReport = now;
        ctx.say(`  ${fmt(sent)} / ${fmt(backlog)} SENT, ${fmt(sent / ((now - t0) / 1000))}/s so far`);
      }
      if (rssEverySeconds > 0 && now - lastRss >= rssEverySeconds * 1000) {
        lastRss = now;
        const rss = maxOf(workers.map((w) => w.memory()?.rssMb));
        if (rss !== undefined) rssSeries.push(Math.round(rss));
        ctx.say(`  worker RSS ${fmt(rss ?? Number.NaN)} MiB, peak ${fmt(maxOf(workers.map((w) => w.memory()?.peakMb)) ?? Number.NaN)} MiB`);
      }
    }
    const cpu = meter.stop();
    const leftoverQueueEntries = await env.redis.llen(queueKey(ctx));
    const [last] = await env.sql<{ at: Date }[]>`select max(sent_at) as at from notifications`;
    const seconds = (last!.at.getTime() - t0) / 1000;
    const peakRss = maxOf(workers.map((w) => w.memory()?.peakMb));
    await stopWorkers(workers);
    const transactions = (await env.transactions()) - transactionsBefore;

    const [check] = await env.sql<{ sent: number; inbox: number; attempts: number }[]>`
      select (select count(*)::int from notifications where status = 'SENT') as sent,
             (select count(*)::int from inbox_items) as inbox,
             (select count(*)::int from notification_attempts where outcome = 'SENT') as attempts`;
    const result: HeraldDrainResult = {
      ...drainResult({ backlog, processes, concurrency, seconds, peakRss, startRss, cpu }),
      requeuedBySweeper: (await Promise.all(workers.map(sweptIds))).reduce((a, b) => a + b, 0),
      leftoverQueueEntries,
      sent: check!.sent,
      inboxItems: check!.inbox,
      sentAttempts: check!.attempts,
      transactionsPerNotification: round(transactions / backlog),
      ...(rssEverySeconds > 0 ? { rssSeriesMb: rssSeries } : {}),
    };
    if (result.sent !== backlog || result.inboxItems !== backlog || result.sentAttempts !== backlog) {
      throw new BenchError(
        `${label}: expected ${backlog} SENT rows, inbox items and SENT attempts, found ${result.sent}, ${result.inboxItems}, ${result.sentAttempts}`,
      );
    }
    ctx.say(
      `${label}: herald ${fmt(result.perSecond)} notifications/s (${fmt(backlog)} in ${fmt(seconds, 1)} s), worker peak RSS ${fmt(result.peakRssMb ?? Number.NaN)} MiB` +
        (result.requeuedBySweeper > 0 ? `, ${fmt(result.requeuedBySweeper)} ids queued again by the due-row scheduler` : ''),
    );
    ctx.say(`  CPU: ${describeCpu(cpu, 'worker process(es)', 'benchmark')}`);
    const busyElsewhere = interference(cpu);
    if (busyElsewhere) ctx.say(`  ${busyElsewhere}`);
    ctx.say(`  PostgreSQL transactions per notification: ${fmt(result.transactionsPerNotification, 2)}`);
    return result;
  } finally {
    await stopWorkers(workers);
  }
}

async function stopWorkers(workers: BenchProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop(5000)));
}

/** Sum of `queued` in the worker's due-row scheduler log lines (info level; 0 when the level hides them). */
async function sweptIds(worker: BenchProcess): Promise<number> {
  let total = 0;
  for await (const line of worker.logLines()) {
    if (!line.includes('"msg":"maintenance job done"') || !line.includes('"job":"dueRowScheduler"')) continue;
    try {
      total += Number((JSON.parse(line) as { queued?: number }).queued ?? 0);
    } catch {
      // not a log line of ours
    }
  }
  return total;
}

/** The measures both drains report, rounded, from what one run saw (RSS in MiB, time in seconds). */
export function drainResult(run: {
  backlog: number;
  processes: number;
  concurrency: number;
  seconds: number;
  peakRss: number | undefined;
  startRss: number | undefined;
  cpu: CpuUse;
}): DrainResult {
  const mb = (rss: number | undefined) => (rss === undefined ? undefined : Math.round(rss));
  const { backlog, processes, concurrency, seconds, cpu } = run;
  return { backlog, processes, concurrency, seconds: round(seconds), perSecond: Math.round(backlog / seconds), peakRssMb: mb(run.peakRss), startRssMb: mb(run.startRss), cpu };
}

export function maxOf(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length ? Math.max(...known) : undefined;
}
