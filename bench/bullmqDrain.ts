import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { drainResult, maxOf, type DrainResult } from './drain.ts';
import { assertRunning, fmt, type BenchContext } from './lib/context.ts';
import { CpuMeter, describeCpu, interference } from './lib/cpu.ts';
import { BenchError } from './lib/environment.ts';
import { BenchProcess } from './lib/processes.ts';

const QUEUE_NAME = 'drain';
const ADD_BATCH = 1000;
const STALL_MS = 60_000;

interface Report {
  type: 'report';
  completed: number;
  lastCompletedAt: number;
}

/**
 * The drain baseline: BullMQ, as a team would otherwise pick, drains `backlog` no-op jobs with the
 * same number of processes and the same total concurrency. The jobs are added first; the workers
 * start paused and are all told to run at once, which starts the clock; it stops at the last
 * completion any worker saw. Completed jobs are kept (BullMQ's default).
 */
export async function drainBullmq(ctx: BenchContext, backlog: number, processes: number, concurrency: number): Promise<DrainResult> {
  const { env } = ctx;
  const prefix = env.key('bull');
  const queue = new Queue(QUEUE_NAME, { connection: { url: env.redisUrl }, prefix });
  const workers: BenchProcess[] = [];
  try {
    ctx.say(`drain: adding ${fmt(backlog)} no-op jobs to a BullMQ queue`);
    const started = Date.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let from = 0; from < backlog; from += ADD_BATCH) {
      const jobs = Array.from({ length: Math.min(ADD_BATCH, backlog - from) }, (_, i) => ({ name: 'noop', data: { n: from + i } }));
      const added = queue.addBulk(jobs);
      inFlight.add(added);
      void added.finally(() => inFlight.delete(added)).catch(() => {});
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const waiting = await queue.getWaitingCount();
    if (waiting !== backlog) throw new BenchError(`BullMQ: ${waiting} jobs waiting after adding ${backlog}`);
    ctx.say(`  ${fmt(backlog)} jobs added in ${fmt((Date.now() - started) / 1000, 1)} s`);

    ctx.say(`drain: starting ${processes} BullMQ worker process(es), concurrency ${concurrency / processes} each`);
    for (let i = 0; i < processes; i++) {
      workers.push(
        BenchProcess.start(
          `bullmq-worker-${i + 1}`,
          'bench/bullmqWorker.ts',
          { REDIS_URL: env.redisUrl, BULL_PREFIX: prefix, QUEUE_NAME, CONCURRENCY: String(concurrency / processes) },
          { cwd: env.logDir, ipc: true },
        ),
      );
    }
    await Promise.all(workers.map((w) => message(w, 'ready', 30_000)));
    const startRss = maxOf(workers.map((w) => w.memory()?.rssMb));

    const meter = CpuMeter.start(workers.map((w) => w.pid));
    const t0 = Date.now();
    for (const w of workers) w.child.send({ type: 'run' });
    let completed = 0;
    let lastProgress = Date.now();
    let lastReport = Date.now();
    while (completed < backlog) {
      await sleep(100);
      assertRunning(workers, 'while draining');
      const now = Date.now();
      const n = await queue.getCompletedCount();
      if (n > completed) lastProgress = now;
      completed = n;
      if (now - lastProgress > STALL_MS) throw new BenchError(`BullMQ drain stalled at ${completed} of ${backlog}; see ${env.logDir}`);
      if (now - lastReport >= 5000 || completed >= backlog) {
        lastReport = now;
        ctx.say(`  ${fmt(completed)} / ${fmt(backlog)} completed, ${fmt(completed / ((now - t0) / 1000))}/s so far`);
      }
    }
    const cpu = meter.stop();
    const reports = await Promise.all(
      workers.map(async (w) => {
        const reply = message(w, 'report', 10_000) as Promise<Report>;
        w.child.send({ type: 'report' });
        return reply;
      }),
    );
    const done = reports.reduce((sum, r) => sum + r.completed, 0);
    if (done !== backlog) throw new BenchError(`BullMQ workers report ${done} completed jobs for ${backlog}`);
    const seconds = (Math.max(...reports.map((r) => r.lastCompletedAt)) - t0) / 1000;
    const peakRss = maxOf(workers.map((w) => w.memory()?.peakMb));
    const result = drainResult({ backlog, processes, concurrency, seconds, peakRss, startRss, cpu });
    ctx.say(`drain: BullMQ ${fmt(result.perSecond)} jobs/s (${fmt(backlog)} in ${fmt(seconds, 1)} s), worker peak RSS ${fmt(result.peakRssMb ?? Number.NaN)} MiB`);
    ctx.say(`  CPU: ${describeCpu(cpu, 'worker process(es)', 'benchmark')}`);
    const busyElsewhere = interference(cpu);
    if (busyElsewhere) ctx.say(`  ${busyElsewhere}`);
    return result;
  } finally {
    await Promise.all(workers.map((w) => w.stop(5000)));
    await queue.close().catch(() => {});
  }
}

/** The next IPC message of `type` from `p`; fails naming it if it exits or stays silent. */
function message(p: BenchProcess, type: string, timeoutMs: number): Promise<{ type: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new BenchError(`${p.name} sent no "${type}" within ${timeoutMs} ms; its last lines:\n${p.tail()}`));
    }, timeoutMs);
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== type) return;
      cleanup();
      resolve(m as { type: string });
    };
    const onExit = () => {
      cleanup();
      reject(p.died(`before it sent "${type}"`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      p.child.off('message', onMessage);
      p.child.off('exit', onExit);
    };
    p.child.on('message', onMessage);
    p.child.on('exit', onExit);
  });
}
