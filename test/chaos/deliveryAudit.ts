import type { AppliedFault } from './faultInjector.ts';
import type { Delivery } from './flakyReceiver.ts';
import type { Findings } from './findings.ts';
import { iso, overlaps } from './requestAudit.ts';
import type { Instance } from './supervisor.ts';

/** One row of `notification_attempts`. */
export interface AttemptRow {
  notification_id: string;
  attempt: number;
  worker_id: string | null;
  started_at: Date;
  finished_at: Date;
  outcome: string;
  error: string | null;
}

/** How far around a delivery a fault still counts as its cause (clock reads, scheduling). */
const SLACK_MS = 1000;

/**
 * Attributes each repeat the receiver accepted. A notification delivered twice is at-least-once
 * working as documented when the worker that delivered it first could not record it: a signal hit
 * that worker, its PostgreSQL or Redis was cut, or it crashed, between the delivery and a lease later; or
 * the worker itself recorded that attempt as failed (it gave up waiting for the answer). Anything
 * else is a repeat nothing explains.
 */
export function auditDeliveries(
  deliveries: Map<string, Delivery[]>,
  attempts: Map<string, AttemptRow[]>,
  faults: AppliedFault[],
  instances: Instance[],
  leaseMs: number,
  findings: Findings,
): void {
  for (const [id, list] of deliveries) {
    const accepted = list.filter((d) => d.acceptedAt !== undefined);
    for (let k = 1; k < accepted.length; k++) {
      const first = accepted[k - 1]!;
      const history = attempts.get(id) ?? [];
      // The attempt that made that delivery: the last one claimed before the request arrived.
      const attempt = history.filter((a) => a.started_at.getTime() <= first.at).at(-1);
      const window = { from: first.at - SLACK_MS, to: first.acceptedAt! + leaseMs + SLACK_MS };
      const cause = attempt?.worker_id ? faultOnWorker(attempt.worker_id, faults, instances, window) : undefined;
      const story = `${id} (repeat ${k} of ${accepted.length - 1}): accepted at ${accepted.map((d) => iso(d.acceptedAt!)).join(', ')}; attempts ${history.map(describeAttempt).join('; ') || 'none'}`;
      if (cause) findings.add('explainedDuplicate', `${story}; ${cause}`);
      else if (attempt && (attempt.outcome === 'RETRY' || attempt.outcome === 'FAILED')) findings.add('timedOutDuplicate', story);
      else findings.add('unexplainedDuplicate', story);
    }
  }
}

/**
 * What hit the worker `workerId` within `window`, said in a few words: a signal to it, a cut of
 * its slot's connections, or its own crash (a failure counted on its own).
 */
function faultOnWorker(
  workerId: string,
  faults: AppliedFault[],
  instances: Instance[],
  window: { from: number; to: number },
): string | undefined {
  const instance = instances.find((i) => i.workerId === workerId);
  if (!instance) return undefined;
  const fault = faults.find((f) => {
    if (f.skipped || !overlaps(f, window.from, window.to)) return false;
    if (f.kind === 'SIGKILL' || f.kind === 'SIGTERM' || f.kind === 'SIGSTOP') return f.workerId === workerId;
    if (f.kind === 'postgres-cut' || f.kind === 'redis-cut') return f.slots.includes(instance.slot);
    return false;
  });
  if (fault) return `${fault.kind} of ${fault.slots.join(',')} at ${iso(fault.startedAt)}`;
  const crashed = instance.endedAt !== undefined && !instance.told && instance.endedAt >= window.from && instance.endedAt <= window.to;
  return crashed ? `${instance.slot} exited on its own at ${iso(instance.endedAt!)}` : undefined;
}

function describeAttempt(a: AttemptRow): string {
  return `#${a.attempt} ${a.worker_id?.slice(0, 12) ?? '?'} ${iso(a.started_at.getTime())}→${iso(a.finished_at.getTime())} ${a.outcome}${a.error ? ` (${a.error.slice(0, 60)})` : ''}`;
}
