import type { ChaosReport } from './chaosRun.ts';
import { CATEGORIES, type Category } from './findings.ts';

/** The command that repeats a run: the same seed gives the same faults and the same load. */
export function repeatCommand(report: Pick<ChaosReport, 'seconds' | 'seed' | 'rate'>): string {
  return `npm run chaos -- --seconds ${report.seconds} --seed ${report.seed}${report.rate === 100 ? '' : ` --rate ${report.rate}`}`;
}

/** The final table: the audit's categories, what the run did, and the command to repeat it. */
export function renderReport(report: ChaosReport): string {
  const rows: [string, string][] = [];
  for (const category of Object.keys(CATEGORIES) as Category[]) {
    const { label, fails } = CATEGORIES[category];
    const n = report.findings.count(category);
    rows.push([label, `${n}${fails && n > 0 ? '  ✗' : ''}`]);
  }
  const table = [
    '| audit | count |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '| run | |',
    '|---|---|',
    `| seed | ${report.seed} |`,
    `| load | ${report.seconds} s at ${report.rate} requests/s: ${report.requests} requests; answers ${counts(report.answers)} |`,
    `| webhook deliveries accepted by the receiver | ${report.webhooksAccepted} |`,
    `| faults applied (skipped: process not up) | ${Object.entries(report.faults).map(([k, f]) => `${k} ${f.applied}${f.skipped ? ` (${f.skipped})` : ''}`).join(', ')} |`,
    `| processes started (5 at first) | ${report.processStarts} |`,
    `| rows by status | ${counts(report.rowsByStatus)} |`,
    `| settled after the faults | ${report.quiescedInMs === undefined ? 'no (timed out)' : `${(report.quiescedInMs / 1000).toFixed(1)} s`} |`,
    `| repeat | \`${repeatCommand(report)}\` |`,
  ];
  const evidence = report.findings.evidence
    .filter((f) => CATEGORIES[f.category].fails)
    .map((f) => `${f.category}: ${f.line}`);
  return [...table, ...(evidence.length ? ['', 'evidence (first 10 per failing category):', ...evidence] : [])].join('\n');
}

function counts(record: Record<string, number>): string {
  return Object.entries(record)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}
