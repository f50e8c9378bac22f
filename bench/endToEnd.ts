import { setTimeout as sleep } from 'node:timers/promises';
import { assertRunning, fmt, startHeraldApi, startHeraldWorkers, type BenchContext } from './lib/context.ts';
import { BenchError } from './lib/environment.ts';
import { describeCpu, CpuMeter, interference, type CpuUse } from './lib/cpu.ts';
import { inAppBodies, pacedLoad } from './lib/load.ts';
import type { BenchProcess } from './lib/processes.ts';
import { round } from './lib/stats.ts';

export interface EndToEndResult {
  offeredRate: number;
  achievedRate: number;
  seconds: number;
  notifications: number;
  /** created_at → sent_at of the rows, ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The API's own answer times at that rate, ms. */
  apiP50Ms: number;
  apiP99Ms: number;
  failed: number;
  /** The API and the workers together. */
  cpu: CpuUse;
}

const WARMUP_SECONDS = 2;
const SETTLE_TIMEOUT_MS = 60_000;

/**
 * The real API and workers together: `POST`s at a fixed rate for `e2eSeconds`, then, from the
 * rows, how long each notification took from created_at to sent_at.
 */
export async function endToEnd(ctx: BenchContext, rate: number): Promise<EndToEndResult> {
  const { env, options } = ctx;
  await env.reset();
  await env.settle();
  const processes: BenchProcess[] = [];
  try {
    const { api, url } = await startHeraldApi(ctx);
    processes.push(api);
    processes.push(...(await startHeraldWorkers(ctx, options.workerProcesses, options.concurrency)));
    const target = `${url}/notifications`;
    const bodies = inAppBodies();
    const maxConnections = options.connections;

    ctx.say(`e2e: warming up for ${WARMUP_SECONDS} s at ${fmt(rate)} req/s`);
    await pacedLoad({ url: target, rate, seconds: WARMUP_SECONDS, bodies, maxConnections });
    const [{ from }] = (await env.sql`select clock_timestamp() as from`) as unknown as [{ from: Date }];
    ctx.say(
      `e2e: ${options.e2eSeconds} s at ${fmt(rate)} req/s, evenly spaced, with ${options.workerProcesses}×${options.concurrency / options.workerProcesses} workers running`,
    );
    const cpu = CpuMeter.start(processes.map((p) => p.pid));
    const load = await pacedLoad({ url: target, rate, seconds: options.e2eSeconds, bodies, maxConnections });
    const cpuUse = cpu.stop();
    assertRunning(processes, 'during the end-to-end load');

    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      const [row] = await env.sql<{ n: number }[]>`
        select count(*)::int as n from notifications where created_at >= ${from} and status <> 'SENT'`;
      if (row!.n === 0) break;
      if (Date.now() > deadline) throw new BenchError(`e2e: ${row!.n} notifications still not SENT ${SETTLE_TIMEOUT_MS / 1000} s after the load; see ${env.logDir}`);
      assertRunning(processes, 'while the last notifications were delivered');
      await sleep(200);
    }
    const [lat] = await env.sql<{ n: number; p50: number; p99: number; max: number }[]>`
      select count(*)::int as n,
             percentile_cont(0.5) within group (order by ms) as p50,
             percentile_cont(0.99) within group (order by ms) as p99,
             max(ms) as max
      from (select extract(epoch from sent_at - created_at)::float8 * 1000 as ms
            from notifications where created_at >= ${from}) t`;
    // A request that failed on the client's side (a timeout) may still have been stored.
    if (lat!.n < load.ok || lat!.n > load.ok + load.failed) {
      throw new BenchError(`e2e: ${load.ok} notifications answered 2xx but ${lat!.n} rows were created`);
    }
    const result: EndToEndResult = {
      offeredRate: rate,
      // Requests are sent one 1/rate apart, the first at 0: n requests span (n - 1)/rate seconds.
      achievedRate: Math.round(Math.max(0, load.sent - 1) / Math.max(load.sendSeconds, 1e-9)),
      seconds: round(load.sendSeconds),
      notifications: lat!.n,
      p50Ms: round(Number(lat!.p50)),
      p99Ms: round(Number(lat!.p99)),
      maxMs: round(Number(lat!.max)),
      apiP50Ms: round(load.p50),
      apiP99Ms: round(load.p99),
      failed: load.failed,
      cpu: cpuUse,
    };
    ctx.say(
      `e2e: ${fmt(result.notifications)} notifications at ${fmt(result.achievedRate)}/s, created→SENT p50 ${fmt(result.p50Ms, 1)} ms, p99 ${fmt(result.p99Ms, 1)} ms, max ${fmt(result.maxMs, 1)} ms` +
        (load.failed ? ` (${load.failed} requests failed: ${JSON.stringify(load.statusCodes)})` : ''),
    );
    ctx.say(`  CPU: ${describeCpu(cpuUse, 'API + workers')}`);
    const busyElsewhere = interference(cpuUse);
    if (busyElsewhere) ctx.say(`  ${busyElsewhere}`);
    return result;
  } finally {
    await Promise.all(processes.map((p) => p.stop(5000)));
  }
}
