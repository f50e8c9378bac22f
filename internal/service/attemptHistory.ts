import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { AttemptHistoryJson, AttemptJson } from '../domain/attemptHistory.ts';
import { findAttemptHistory, type AttemptRow } from '../repository/attempts.ts';

/** What happened to a notification, attempt by attempt, including the one a worker holds now. */
export async function getAttemptHistory(deps: { sql: Sql; requestTimeoutMs: number }, id: string): Promise<AttemptHistoryJson> {
  const history = await runWithDeadline(deps.requestTimeoutMs, () => findAttemptHistory(deps.sql, id));
  if (!history) throw new NotFoundError(`notification ${id} not found`);
  return { notification_id: id, status: history.status, attempts: history.attempts.map(toAttemptJson) };
}

function toAttemptJson(a: AttemptRow): AttemptJson {
  return {
    attempt: a.attempt,
    worker_id: a.worker_id,
    started_at: a.started_at.toISOString(),
    finished_at: a.finished_at?.toISOString() ?? null,
    outcome: a.outcome,
    error: a.error,
    ...(a.lease_expires_at ? { lease_expires_at: a.lease_expires_at.toISOString() } : {}),
  };
}
