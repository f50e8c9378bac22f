import type { Sql } from '../platform/database.ts';
import type { Status } from '../domain/notification.ts';

/** One delivery attempt: a finished one from notification_attempts, or the claim under way. */
export interface AttemptRow {
  attempt: number;
  worker_id: string | null;
  started_at: Date;
  finished_at: Date | null;
  /** Null while the attempt is under way. */
  outcome: string | null;
  error: string | null;
  /** Only for the attempt under way: when another worker may take it over. */
  lease_expires_at?: Date;
}

export interface AttemptHistory {
  status: Status;
  attempts: AttemptRow[];
}

interface JoinedRow {
  status: Status;
  current_attempt: number;
  locked_by: string | null;
  claimed_at: Date | null;
  lease_expires_at: Date | null;
  attempt: number | null;
  worker_id: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  outcome: string | null;
  error: string | null;
}

/**
 * A notification's attempts in order: every finished one, then the one under way if it is
 * PROCESSING (the claim lives on the notification's row until it finishes). One statement, so the
 * two are read from one snapshot: an attempt finishing meanwhile is listed once, never twice or
 * not at all. Undefined for an unknown notification.
 */
export async function findAttemptHistory(sql: Sql, id: string): Promise<AttemptHistory | undefined> {
  const rows = await sql<JoinedRow[]>`
    select n.status, n.attempt as current_attempt, n.locked_by, n.claimed_at, n.lease_expires_at,
           a.attempt, a.worker_id, a.started_at, a.finished_at, a.outcome, a.error
    from notifications n
    left join notification_attempts a on a.notification_id = n.id
    where n.id = ${id}
    order by a.attempt`;
  const first = rows[0];
  if (!first) return undefined;
  const attempts: AttemptRow[] = rows
    .filter((r) => r.attempt !== null)
    .map((r) => ({
      attempt: r.attempt!,
      worker_id: r.worker_id,
      started_at: r.started_at!,
      finished_at: r.finished_at,
      outcome: r.outcome,
      error: r.error,
    }));
  if (first.status === 'PROCESSING') {
    attempts.push({
      attempt: first.current_attempt,
      worker_id: first.locked_by,
      started_at: first.claimed_at!,
      finished_at: null,
      outcome: null,
      error: null,
      lease_expires_at: first.lease_expires_at!,
    });
  }
  return { status: first.status, attempts };
}
