import type { Sql } from './chaosEnvironment.ts';
import { auditDeliveries, type AttemptRow } from './deliveryAudit.ts';
import type { AppliedFault } from './faultInjector.ts';
import type { FlakyReceiver } from './flakyReceiver.ts';
import { Findings } from './findings.ts';
import type { LoadRequest } from './loadGenerator.ts';
import { auditRequests, iso, type StoredForMarker } from './requestAudit.ts';
import type { ProcessFailure, Instance } from './supervisor.ts';

const FINAL = ['SENT', 'FAILED', 'SKIPPED'];

/** What the audit needs from the run. */
export interface AuditInput {
  sql: Sql;
  requests: LoadRequest[];
  receiver: FlakyReceiver;
  faults: AppliedFault[];
  instances: Instance[];
  processFailures: ProcessFailure[];
  leaseMs: number;
}

/** The audit's findings and the rows by status it read. */
export interface AuditResult {
  findings: Findings;
  rowsByStatus: Record<string, number>;
}

/**
 * The final audit, after quiescence: every request's answers against the rows PostgreSQL holds,
 * every row's status, every repeat the receiver accepted against the faults and the attempts'
 * history, and every process that ended without being told to.
 */
export async function audit(input: AuditInput): Promise<AuditResult> {
  const findings = new Findings();
  const { stored, rows } = await storedByMarker(input.sql);
  auditRequests(input.requests, stored, input.faults, input.instances, findings);

  const rowsByStatus: Record<string, number> = {};
  for (const r of rows) rowsByStatus[r.status] = (rowsByStatus[r.status] ?? 0) + 1;
  for (const r of rows) if (!FINAL.includes(r.status)) findings.add('stuck', `${r.id} (${r.type}) is ${r.status}, ${r.body}`);
  const running = await input.sql<{ id: string; body: string }[]>`select id, body from fanouts where status <> 'DONE'`;
  for (const f of running) findings.add('stuck', `fan-out ${f.id} is still RUNNING, ${f.body}`);

  for (const r of rows) {
    if (r.type !== 'WEBHOOK' || r.status !== 'SENT') continue;
    if (!(input.receiver.deliveries.get(r.id) ?? []).some((d) => d.acceptedAt !== undefined)) {
      findings.add('sentUndelivered', `WEBHOOK ${r.id} is SENT but the receiver never accepted it (${r.body})`);
    }
  }
  const noInboxItem = await input.sql<{ id: string }[]>`
    select n.id from notifications n left join inbox_items i on i.notification_id = n.id
    where n.type = 'IN_APP' and n.status = 'SENT' and i.notification_id is null`;
  for (const r of noInboxItem) findings.add('sentUndelivered', `IN_APP ${r.id} is SENT but has no inbox item`);

  const repeated = [...input.receiver.deliveries].filter(([, list]) => list.filter((d) => d.acceptedAt !== undefined).length > 1).map(([id]) => id);
  auditDeliveries(input.receiver.deliveries, await attemptsOf(input.sql, repeated), input.faults, input.instances, input.leaseMs, findings);

  for (const p of input.processFailures) findings.add('diedOnItsOwn', `${p.slot} ${p.what} at ${iso(p.at)}; last lines: ${p.tail.replaceAll('\n', ' ⏎ ')}`);
  return { findings, rowsByStatus };
}

interface Row {
  id: string;
  type: string;
  status: string;
  body: string;
  fanout_id: string | null;
}

async function storedByMarker(sql: Sql): Promise<{ stored: Map<string, StoredForMarker>; rows: Row[] }> {
  const rows = await sql<Row[]>`select id, type, status, body, fanout_id from notifications`;
  const fanouts = await sql<{ id: string; status: string; body: string }[]>`select id, status, body from fanouts`;
  const stored = new Map<string, StoredForMarker>();
  const entry = (marker: string) => {
    let e = stored.get(marker);
    if (!e) stored.set(marker, (e = { rows: [], fanouts: [] }));
    return e;
  };
  for (const r of rows) entry(r.body).rows.push({ id: r.id, status: r.status, fanoutId: r.fanout_id });
  for (const f of fanouts) entry(f.body).fanouts.push({ id: f.id, status: f.status });
  return { stored, rows };
}

async function attemptsOf(sql: Sql, ids: string[]): Promise<Map<string, AttemptRow[]>> {
  const byId = new Map<string, AttemptRow[]>();
  if (ids.length === 0) return byId;
  const rows = await sql<AttemptRow[]>`
    select notification_id, attempt, worker_id, started_at, finished_at, outcome, error
    from notification_attempts where notification_id = any(${ids}::uuid[]) order by notification_id, attempt`;
  for (const r of rows) {
    const list = byId.get(r.notification_id) ?? [];
    list.push(r);
    byId.set(r.notification_id, list);
  }
  return byId;
}
