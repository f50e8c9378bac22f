import type { AppliedFault } from './faultInjector.ts';
import type { Findings } from './findings.ts';
import type { LoadRequest, Try } from './loadGenerator.ts';
import type { Instance } from './supervisor.ts';

/** What PostgreSQL holds for one request's marker after quiescence. */
export interface StoredForMarker {
  /** Notification rows whose body is the marker, with their status. */
  rows: { id: string; status: string; fanoutId: string | null }[];
  /** Fan-out rows (a `user_ids` list, a topic) whose body is the marker. */
  fanouts: { id: string; status: string }[];
}

/** How long after a client saw its connection drop the crashed process's exit may be noticed. */
const CRASH_NOTICED_WITHIN_MS = 5000;

const NOTHING: StoredForMarker = { rows: [], fanouts: [] };

/**
 * Holds each request's answers against what PostgreSQL stored for it:
 * - accepted (a 2xx): every row it asked for is there (else lost), and no more (else stored twice);
 * - refused (a 4xx or 503 on every try): nothing is stored, unless a try was answered 503 while a
 *   PostgreSQL cut of that API was on (the in-doubt commit the README documents);
 * - a 5xx other than 503 is a failure; so is no answer from an API no fault had hit.
 */
export function auditRequests(
  requests: LoadRequest[],
  stored: Map<string, StoredForMarker>,
  faults: AppliedFault[],
  instances: Instance[],
  findings: Findings,
): void {
  for (const request of requests) {
    const found = stored.get(request.marker) ?? NOTHING;
    for (const t of request.tries) auditTry(request, t, faults, instances, findings);
    const accepted = request.tries.find((t) => t.status !== undefined && t.status >= 200 && t.status < 300);
    const storedAny = found.rows.length > 0 || found.fanouts.length > 0;
    const tooMany = found.rows.length > request.expectedRows || found.fanouts.length > 1;
    if (tooMany) findings.add('duplicateRows', `${describe(request)}: ${found.rows.length} rows, ${found.fanouts.length} fan-outs for the marker (expected at most ${request.expectedRows})`);
    if (accepted) auditAccepted(request, accepted, found, findings);
    if (!storedAny) continue;
    // Stored: by the accepted try if it created (201/202), else by an earlier try that was refused
    // or went unanswered. An unanswered try may have stored; a refused one only in doubt.
    const storing = accepted && accepted.status !== 200 ? [] : request.tries.slice(0, accepted ? request.tries.indexOf(accepted) : undefined);
    if (storing.length === 0 || storing.some((t) => t.status === undefined)) continue;
    const inDoubt = storing.find((t) => isInDoubt(t, faults));
    if (inDoubt) findings.add('inDoubtCommit', `${describe(request)}: stored, answered 503 at ${iso(inDoubt.answeredAt)} by ${inDoubt.slot} during a PostgreSQL cut`);
    else findings.add('storedBehindRefusal', `${describe(request)}: stored (${found.rows.length} rows) but answered ${storing.map(answerOf).join(', ')}`);
  }
}

function auditAccepted(request: LoadRequest, accepted: Try, found: StoredForMarker, findings: Findings): void {
  if (request.kind === 'topic') {
    const fanout = found.fanouts.find((f) => f.id === accepted.fanoutId);
    if (!fanout) findings.add('lost', `${describe(request)}: answered ${accepted.status} with fan-out ${accepted.fanoutId}, which is not stored`);
    else if (fanout.status === 'DONE' && found.rows.length < request.expectedRows) {
      findings.add('lost', `${describe(request)}: fan-out ${fanout.id} DONE with ${found.rows.length} of ${request.expectedRows} notifications`);
    }
    return;
  }
  const ids = new Set(found.rows.map((r) => r.id));
  const missing = accepted.ids.filter((id) => !ids.has(id));
  if (missing.length > 0 || accepted.ids.length === 0) {
    findings.add('lost', `${describe(request)}: answered ${accepted.status} at ${iso(accepted.answeredAt)} with ${accepted.ids.join(',') || 'no id'}; not stored: ${missing.join(',') || 'no id in the answer'}`);
  }
}

function auditTry(request: LoadRequest, t: Try, faults: AppliedFault[], instances: Instance[], findings: Findings): void {
  if (t.status === undefined) {
    const explained = t.error === 'no API running' || apiFaulted(t, faults, instances);
    findings.add(explained ? 'noAnswerFromFaultedApi' : 'liveApiNoAnswer', `${describe(request)}: ${t.slot ?? 'no API'} gave no answer (${t.error}) ${iso(t.sentAt)} → ${iso(t.answeredAt)}`);
  } else if (t.status >= 500 && t.status !== 503) {
    findings.add('serverError', `${describe(request)}: ${t.slot} answered ${answerOf(t)} at ${iso(t.answeredAt)}`);
  } else if (t.status >= 400 && t.status < 500 && !(t.status === 409 && request.keyed)) {
    findings.add('unexpectedRefusal', `${describe(request)}: ${t.slot} answered ${answerOf(t)} at ${iso(t.answeredAt)}`);
  }
}

/** A 503 `unavailable` while a PostgreSQL cut of the answering API was on: COMMIT's outcome was unknown. */
function isInDoubt(t: Try, faults: AppliedFault[]): boolean {
  if (t.status !== 503 || t.code !== 'unavailable' || t.slot === undefined) return false;
  return faults.some((f) => f.kind === 'postgres-cut' && !f.skipped && f.slots.includes(t.slot!) && overlaps(f, t.sentAt, t.answeredAt));
}

/**
 * Whether a signal hit the API the try went to while it waited, or the process was ending anyway
 * (it crashed: that is a failure of its own, and its exit is noticed a moment after its sockets close).
 */
function apiFaulted(t: Try, faults: AppliedFault[], instances: Instance[]): boolean {
  const instance = instances.find((i) => i.slot === t.slot && i.url === t.url);
  if (instance?.toldAt !== undefined && instance.toldAt <= t.answeredAt) return true;
  if (instance?.endedAt !== undefined && instance.endedAt <= t.answeredAt + CRASH_NOTICED_WITHIN_MS) return true;
  return faults.some((f) => f.kind === 'SIGSTOP' && !f.skipped && f.slots.includes(t.slot!) && overlaps(f, t.sentAt, t.answeredAt));
}

export function overlaps(f: { startedAt: number; endedAt: number }, from: number, to: number): boolean {
  return f.startedAt <= to && f.endedAt >= from;
}

function answerOf(t: Try): string {
  return t.status === undefined ? `no answer (${t.error})` : `${t.status}${t.code ? ` ${t.code}` : ''}`;
}

function describe(r: LoadRequest): string {
  return `request #${r.n} (${r.kind}${r.keyed ? ', Idempotency-Key' : ''}, tries: ${r.tries.map(answerOf).join(' → ')})`;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}
