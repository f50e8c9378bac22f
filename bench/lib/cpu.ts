import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Where the CPU went during a measurement, from /proc (Linux; elsewhere every figure is undefined):
 * the processes under test, PostgreSQL's and Redis's processes (all of them, so others' work on
 * the same servers counts too), this benchmark process (the load generator), and the whole machine.
 * Process figures are percent of one core; `machinePct` is percent of all cores.
 */
export interface CpuUse {
  subjectPct: number | undefined;
  postgresPct: number | undefined;
  redisPct: number | undefined;
  benchPct: number;
  machinePct: number | undefined;
  /**
   * Percent of one core used by everything else (other processes, the kernel's share of the
   * loopback traffic): a high figure means the machine was busy with more than this benchmark.
   */
  otherPct: number | undefined;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of a process in ticks, and its command name. */
function processTicks(pid: number | string): { ticks: number; comm: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after "pid (comm)".
    return { ticks: Number(fields[11]) + Number(fields[12]), comm };
  } catch {
    return undefined;
  }
}

/** Ticks of every process whose command name is one of `names`, keyed by pid. */
function ticksByName(names: string[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>(names.map((n) => [n, new Map()]));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    const t = processTicks(pid);
    if (t && out.has(t.comm)) out.get(t.comm)!.set(Number(pid), t.ticks);
  }
  return out;
}

function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

const SERVERS = ['postgres', 'redis-server'];

export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly bench = process.cpuUsage();
  private readonly subjects: Map<number, number>;
  private readonly servers: Map<string, Map<number, number>>;
  private readonly machine = machineTicks();

  private constructor(private readonly pids: number[]) {
    this.subjects = new Map(pids.map((p) => [p, processTicks(p)?.ticks ?? Number.NaN]));
    this.servers = ticksByName(SERVERS);
  }

  /** Starts measuring; `pids` are the processes under test. */
  static start(pids: number[]): CpuMeter {
    return new CpuMeter(pids);
  }

  stop(): CpuUse {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const hz = clockTicks();
    const pct = (ticks: number) => Math.round((ticks / hz / seconds) * 100);
    let subject: number | undefined = 0;
    for (const pid of this.pids) {
      const now = processTicks(pid)?.ticks;
      const before = this.subjects.get(pid);
      if (now === undefined || before === undefined || Number.isNaN(before)) subject = undefined;
      else if (subject !== undefined) subject += now - before;
    }
    const servers = ticksByName(SERVERS);
    // A server process that started during the measurement counts from zero; one that ended is lost.
    const serverPct = (name: string) => {
      const before = this.servers.get(name)!;
      const after = servers.get(name)!;
      if (after.size === 0) return undefined;
      let ticks = 0;
      for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
      return pct(ticks);
    };
    const used = process.cpuUsage(this.bench);
    const machine = machineTicks();
    const subjectPct = subject === undefined ? undefined : pct(subject);
    const postgresPct = serverPct('postgres');
    const redisPct = serverPct('redis-server');
    const benchPct = Math.round(((used.user + used.system) / 1e6 / seconds) * 100);
    const busy = machine && this.machine ? (machine.busy - this.machine.busy) / (machine.total - this.machine.total) : undefined;
    const known = [subjectPct, postgresPct, redisPct].every((v) => v !== undefined);
    return {
      subjectPct,
      postgresPct,
      redisPct,
      benchPct,
      machinePct: busy === undefined ? undefined : Math.round(busy * 100),
      otherPct:
        busy === undefined || !known
          ? undefined
          : Math.max(0, Math.round(busy * 100 * os.cpus().length - subjectPct! - postgresPct! - redisPct! - benchPct)),
    };
  }
}

export function describeCpu(c: CpuUse, subject: string, bench = 'load generator'): string {
  const part = (label: string, v: number | undefined) => (v === undefined ? '' : `${label} ${v}%`);
  return [
    part(subject, c.subjectPct),
    part('PostgreSQL', c.postgresPct),
    part('Redis', c.redisPct),
    part(bench, c.benchPct),
    part('other', c.otherPct),
    c.machinePct === undefined ? '' : `machine ${c.machinePct}% of all cores`,
  ]
    .filter(Boolean)
    .join(', ');
}

/** Above this share of a core, other work on the machine may have lowered a measurement. */
export const BUSY_ELSEWHERE_PCT = 30;

/** A warning when other work took a noticeable share of the machine during a measurement. */
export function interference(c: CpuUse): string | undefined {
  if (c.otherPct === undefined || c.otherPct < BUSY_ELSEWHERE_PCT) return undefined;
  return `note: ${c.otherPct}% of a core went to other work during this measurement; if the machine is shared, run again when it is quiet`;
}
