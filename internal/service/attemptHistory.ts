import { z } from 'zod';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError } from '../domain/errors.ts';
import { STATUSES } from '../domain/notification.ts';
import { findAttemptHistory, type AttemptRow } from '../repository/attempts.ts';

/** An attempt as `GET /notifications/:id/attempts` shows it; `outcome` is null while under way. */
export const attemptJsonSchema = z
  .object({
    attempt: z.int().min(1),
    worker_id: z.string().nullable(),
    started_at: z.iso.datetime(),
    finished_at: z.iso.datetime().nullable(),
    outcome: z.string().nullable().meta({ description: '`SENT`, `RETRY`, `FAILED`, `SKIPPED`, `RELEASED`, `LEASE_EXPIRED`; null while under way' }),
    error: z.string().nullable(),
    lease_expires_at: z.iso.datetime().optional().meta({ description: 'only on the attempt under way: when another worker may take it over' }),
  })
  .meta({ id: 'Attempt' });

export type AttemptJson = z.infer<typeof attemptJsonSchema>;

/** `GET /notifications/:id/attempts`; the OpenAPI document is generated from this schema. */
export const attemptHistoryJsonSchema = z
  .object({ notification_id: z.guid(), status: z.enum(STATUSES), attempts: z.array(attemptJsonSchema) })
  .meta({ id: 'AttemptHistory' });

export type AttemptHistoryJson = z.infer<typeof attemptHistoryJsonSchema>;

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
