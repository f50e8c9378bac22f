import { execFileSync } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DrainResult, HeraldDrainResult } from '../drain.ts';
import type { EndToEndResult } from '../endToEnd.ts';
import type { IngestResult, SoakResult } from '../ingest.ts';
import { fmt } from './context.ts';
import { BUSY_ELSEWHERE_PCT, type CpuUse } from './cpu.ts';
import type { ServerFacts } from './environment.ts';
import { ROOT } from './processes.ts';

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  redis: string;
  postgresSettings: Record<string, string>;
  /** 1-minute load average when the run started and ended: others' work on the machine shows here. */
  loadAverage: { start: number; end: number };
}

export interface BenchResults {
  schema: 1;
  startedAt: string;
  runSeconds: number;
  machine: Machine;
  /** `uncommittedChanges`: the product's files (cmd, internal, migrations, package*.json) differed from the commit. */
  revision: { commit: string; uncommittedChanges: boolean } | undefined;
  settings: Record<string, string | number>;
  ingest?: { herald: IngestResult; naive: IngestResult; ratio: number };
  drain?: { herald: HeraldDrainResult; bullmq: DrainResult; ratio: number };
  endToEnd?: EndToEndResult;
  soak?: { herald: SoakResult; naive: SoakResult };
  memory?: HeraldDrainResult;
}

export function machineFacts(facts: ServerFacts, loadAtStart: number): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: facts.postgresVersion,
    redis: facts.redisVersion,
    postgresSettings: facts.postgresSettings,
    loadAverage: { start: Number(loadAtStart.toFixed(2)), end: Number(os.loadavg()[0]!.toFixed(2)) },
  };
}

/** What runs in the processes measured; changes elsewhere (tests, docs, bench/) do not matter. */
const PRODUCT_PATHS = ['cmd', 'internal', 'migrations', 'package.json', 'package-lock.json'];

/** The commit measured and whether the product's files differed from it (read only). */
export function revision(): BenchResults['revision'] {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', ...PRODUCT_PATHS], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return { commit, uncommittedChanges: status.trim().length > 0 };
  } catch {
    return undefined;
  }
}

const ms = (n: number) => fmt(n, n < 10 ? 2 : 1);
const mib = (n: number | undefined) => (n === undefined ? 'n/a' : fmt(n));
const pct = (n: number | undefined) => (n === undefined ? 'n/a' : `${n}`);
const cpu = (c: CpuUse, third: 'redis' | 'bench') =>
  `${pct(c.subjectPct)} / ${pct(c.postgresPct)} / ${pct(third === 'redis' ? c.redisPct : c.benchPct)} / ${pct(c.otherPct)}`;
const times = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');

/** The results as a Markdown table, with the machine it ran on. */
export function renderTable(r: BenchResults): string {
  const m = r.machine;
  const rows: [string, string, string, string, string][] = [];
  if (r.ingest) {
    const { herald, naive } = r.ingest;
    rows.push([
      `ingest, POST /notifications req/s (${r.settings.connections} connections, ${r.settings.ingestSeconds} s)`,
      fmt(herald.rps),
      `${fmt(naive.rps)} (naive route)`,
      times(r.ingest.ratio),
      '≥ 2×',
    ]);
    rows.push([`ingest latency p50 / p99, ms`, `${ms(herald.p50Ms)} / ${ms(herald.p99Ms)}`, `${ms(naive.p50Ms)} / ${ms(naive.p99Ms)}`, '', '']);
    rows.push([`ingest CPU, % of a core: API / PostgreSQL / load generator / other`, cpu(herald.cpu, 'bench'), cpu(naive.cpu, 'bench'), '', '']);
    rows.push([`ingest PostgreSQL transactions per request`, fmt(herald.transactionsPerRequest, 2), fmt(naive.transactionsPerRequest, 2), '', '']);
  }
  if (r.drain) {
    const { herald, bullmq } = r.drain;
    rows.push([
      `drain, notifications/s (${fmt(herald.backlog)} backlog, ${herald.processes} process × ${herald.concurrency / herald.processes})`,
      fmt(herald.perSecond),
      `${fmt(bullmq.perSecond)} (BullMQ no-op jobs)`,
      times(r.drain.ratio),
      '≥ 1×',
    ]);
    rows.push([
      `drain worker RSS idle / peak, MiB`,
      `${mib(herald.startRssMb)} / ${mib(herald.peakRssMb)}`,
      `${mib(bullmq.startRssMb)} / ${mib(bullmq.peakRssMb)}`,
      '',
      '',
    ]);
    rows.push([`drain CPU, % of a core: workers / PostgreSQL / Redis / other`, cpu(herald.cpu, 'redis'), cpu(bullmq.cpu, 'redis'), '', '']);
    rows.push([`drain PostgreSQL transactions per notification`, fmt(herald.transactionsPerNotification, 2), '0 (Redis only)', '', '']);
  }
  if (r.endToEnd) {
    const e = r.endToEnd;
    rows.push([
      `end to end created → SENT p50 / p99 / max, ms (${fmt(e.achievedRate)} req/s for ${fmt(e.seconds)} s)`,
      `${ms(e.p50Ms)} / ${ms(e.p99Ms)} / ${ms(e.maxMs)}`,
      '',
      '',
      'p99 < 50 ms',
    ]);
    rows.push([`end to end CPU, % of a core: API + workers / PostgreSQL / Redis / other`, cpu(e.cpu, 'redis'), '', '', '']);
  }
  if (r.soak) {
    const s = r.soak;
    const span = (x: SoakResult) =>
      `${fmt(x.windows[0] ?? Number.NaN)} → ${fmt(x.windows.at(-1) ?? Number.NaN)} (${times(x.hold)}), lowest ${fmt(Math.min(...x.windows))}`;
    rows.push([`soak req/s, first → last 10 s window (${fmt(s.herald.seconds)} s)`, span(s.herald), `${span(s.naive)} (naive route)`, '', 'holds (≈ 1×)']);
  }
  if (r.memory) {
    const mem = r.memory;
    rows.push([
      `memory: one worker draining ${fmt(mem.backlog)}, RSS idle / peak, MiB`,
      `${mib(mem.startRssMb)} / ${mib(mem.peakRssMb)} (${fmt(mem.perSecond)}/s)`,
      '',
      '',
      'flat',
    ]);
  }
  const busy: string[] = [];
  const check = (what: string, c: CpuUse | undefined) => {
    if (c?.otherPct !== undefined && c.otherPct >= BUSY_ELSEWHERE_PCT) busy.push(`${what} ${c.otherPct}%`);
  };
  check('ingest herald', r.ingest?.herald.cpu);
  check('ingest naive', r.ingest?.naive.cpu);
  check('drain herald', r.drain?.herald.cpu);
  check('drain BullMQ', r.drain?.bullmq.cpu);
  check('end to end', r.endToEnd?.cpu);
  const header: [string, string, string, string, string] = ['measure', 'herald', 'baseline', 'ratio', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rev = r.revision ? `, commit ${r.revision.commit}${r.revision.uncommittedChanges ? ' + uncommitted changes' : ''}` : '';
  return [
    `herald benchmark, ${r.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${rev}, ${fmt(r.runSeconds)} s`,
    `machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, PostgreSQL ${m.postgres}, Redis ${m.redis}, load average before the run ${m.loadAverage.start}`,
    `herald processes at LOG_LEVEL=${r.settings.logLevel}; load generated by this process on the same cores (autocannon; end to end: evenly spaced requests)` +
      (r.settings.postgresSettingsForThisRun ? `; PostgreSQL settings for this run: ${r.settings.postgresSettingsForThisRun}` : ''),
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    ...(busy.length
      ? ['', `note: other work on the machine took a share of a core during: ${busy.join(', ')}; those figures may be low, run again when the machine is quiet`]
      : []),
  ].join('\n');
}

/** Writes the results as JSON to `dir/<start time>.json` (via a temporary file), returns its path. */
export async function writeResults(r: BenchResults, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `${r.startedAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-')}.json`;
  const file = path.join(dir, name);
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(r, null, 2)}\n`);
  await rename(tmp, file);
  return file;
}
