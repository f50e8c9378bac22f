import { fmt, startHeraldApi, startNaiveApi, type BenchContext } from './lib/context.ts';
import { CpuMeter, describeCpu, interference, type CpuUse } from './lib/cpu.ts';
import { BenchError } from './lib/environment.ts';
import type { BenchProcess } from './lib/processes.ts';
import { inAppBodies, postLoad, type LoadResult } from './lib/load.ts';
import { round } from './lib/stats.ts';

export type Server = 'herald' | 'naive';

export interface IngestResult {
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Rows in PostgreSQL after the run, against 2xx answers (warm-up included). */
  rowsStored: number;
  answered: number;
  cpu: CpuUse;
  /** PostgreSQL transactions per stored notification. */
  transactionsPerRequest: number;
}

export interface SoakResult {
  seconds: number;
  /** requests/s in each 10 s window. */
  windows: number[];
  /** CPU of the server process and of PostgreSQL in each window, % of a core: where a slowdown comes from. */
  windowCpu: { serverPct: number | undefined; postgresPct: number | undefined }[];
  /** last window / first window. */
  hold: number;
  non2xx: number;
  errors: number;
}

const SERVER_NAME: Record<Server, string> = { herald: 'herald API (cmd/api.ts)', naive: 'naive route (bench/naiveApi.ts)' };

/** Runs `run` against a fresh server; also returns the database's transactions, counted once it stopped. */
async function withServer<T>(
  ctx: BenchContext,
  server: Server,
  run: (url: string, api: BenchProcess) => Promise<T>,
): Promise<{ result: T; transactions: number }> {
  await ctx.env.reset();
  await ctx.env.settle();
  const before = await ctx.env.transactions();
  const { api, url } = server === 'herald' ? await startHeraldApi(ctx) : await startNaiveApi(ctx);
  try {
    const result = await run(`${url}/notifications`, api);
    if (!api.running) throw api.died('during the load');
    await api.stop(5000);
    return { result, transactions: (await ctx.env.transactions()) - before };
  } finally {
    await api.stop(5000);
  }
}

function describeErrors(r: LoadResult): string {
  const codes = Object.entries(r.statusCodes)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, n]) => `${n}×${code}`);
  return [...codes, r.errors ? `${r.errors} connection errors (${r.timeouts} timeouts)` : ''].filter(Boolean).join(', ');
}

/** `POST /notifications` at `connections` for `ingestSeconds`, after a warm-up, against one server. */
export async function ingest(ctx: BenchContext, server: Server): Promise<IngestResult> {
  const { connections, ingestSeconds, warmupSeconds } = ctx.options;
  const bodies = inAppBodies();
  const { result, transactions } = await withServer(ctx, server, async (url, api) => {
    let answered = 0;
    if (warmupSeconds > 0) {
      ctx.say(`ingest: ${SERVER_NAME[server]}: warming up for ${warmupSeconds} s`);
      answered += (await postLoad({ url, connections, seconds: warmupSeconds, bodies })).ok;
    }
    ctx.say(`ingest: ${SERVER_NAME[server]}: measuring ${ingestSeconds} s at ${connections} connections`);
    const meter = CpuMeter.start([api.pid]);
    const r = await postLoad({ url, connections, seconds: ingestSeconds, bodies });
    const cpu = meter.stop();
    answered += r.ok;
    const [row] = await ctx.env.sql<{ n: number }[]>`select count(*)::int as n from notifications`;
    const rowsStored = row!.n;
    const errors = describeErrors(r);
    ctx.say(
      `ingest: ${server} ${fmt(r.rps)} req/s, p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms, max ${fmt(r.max, 1)} ms` +
        (errors ? ` (also ${errors})` : ''),
    );
    ctx.say(`  CPU: ${describeCpu(cpu, 'API process')}`);
    const busyElsewhere = interference(cpu);
    if (busyElsewhere) ctx.say(`  ${busyElsewhere}`);
    // Every 2xx must be a stored row; a request cut off in flight when a load stopped may be stored
    // without its answer being counted, at most one per connection per load.
    const cutOff = connections * (warmupSeconds > 0 ? 2 : 1);
    if (rowsStored < answered || rowsStored > answered + cutOff) {
      throw new BenchError(`ingest: ${server} answered 2xx ${answered} times but ${rowsStored} rows are stored`);
    }
    return {
      seconds: round(r.seconds),
      rps: Math.round(r.rps),
      p50Ms: round(r.p50),
      p99Ms: round(r.p99),
      maxMs: round(r.max),
      ok: r.ok,
      non2xx: r.non2xx,
      errors: r.errors,
      rowsStored,
      answered,
      cpu,
    };
  });
  const transactionsPerRequest = round(transactions / result.rowsStored);
  ctx.say(`  PostgreSQL transactions per stored notification: ${fmt(transactionsPerRequest, 2)}`);
  return { ...result, transactionsPerRequest };
}

/** A longer ingest, printing the rate per 10 s window, so a slowdown over time shows. */
export async function soak(ctx: BenchContext, server: Server): Promise<SoakResult> {
  const { connections, soakSeconds } = ctx.options;
  const bodies = inAppBodies();
  const { result } = await withServer(ctx, server, async (url, api) => {
    if (ctx.options.warmupSeconds > 0) {
      ctx.say(`soak: ${SERVER_NAME[server]}: warming up for ${ctx.options.warmupSeconds} s`);
      await postLoad({ url, connections, seconds: ctx.options.warmupSeconds, bodies });
    }
    ctx.say(`soak: ${SERVER_NAME[server]}: ${soakSeconds} s at ${connections} connections, rate per 10 s window:`);
    const windows: number[] = [];
    const windowCpu: SoakResult['windowCpu'] = [];
    let current = 0;
    let meter = CpuMeter.start([api.pid]);
    const r = await postLoad({
      url,
      connections,
      seconds: soakSeconds,
      bodies,
      onSecond: (second, ok) => {
        current += ok;
        if ((second + 1) % 10 === 0) {
          const cpu = meter.stop();
          meter = CpuMeter.start([api.pid]);
          windows.push(Math.round(current / 10));
          windowCpu.push({ serverPct: cpu.subjectPct, postgresPct: cpu.postgresPct });
          ctx.say(
            `  ${server} ${String(second - 9).padStart(3)}–${String(second + 1).padEnd(3)} s: ${fmt(current / 10)} req/s (CPU: ${describeCpu(cpu, 'API process')})`,
          );
          current = 0;
        }
      },
    });
    // The callback reports a second once the next has begun; the last whole window may be left.
    const whole = Math.floor(r.perSecond.length / 10);
    while (windows.length < whole) {
      const w = windows.length;
      windows.push(Math.round(r.perSecond.slice(w * 10, w * 10 + 10).reduce((a, b) => a + b, 0) / 10));
      windowCpu.push({ serverPct: undefined, postgresPct: undefined });
      ctx.say(`  ${server} ${String(w * 10).padStart(3)}–${String(w * 10 + 10).padEnd(3)} s: ${fmt(windows[w]!)} req/s`);
    }
    const errors = describeErrors(r);
    if (errors) ctx.say(`  ${server}: ${errors}`);
    return {
      seconds: round(r.seconds),
      windows,
      windowCpu,
      hold: windows.length >= 2 ? Number((windows[windows.length - 1]! / windows[0]!).toFixed(2)) : Number.NaN,
      non2xx: r.non2xx,
      errors: r.errors,
    };
  });
  return result;
}
