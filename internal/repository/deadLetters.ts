import type { Sql } from '../platform/database.ts';
import type { Channel, NotificationRow } from '../domain/notification.ts';

/**
 * Puts FAILED notifications back to PENDING with a fresh retry budget, marked as queued now (the
 * caller pushes them; a lost push is repaired by maintenance). Rows that are not FAILED are left
 * alone. Returns the ids it reset.
 */
export async function resetForReplay(sql: Sql, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ id: string }[]>`
    update notifications
    set status = 'PENDING', retry_count = 0, error_reason = null, available_at = now(),
        queued_at = now(), dead_lettered_at = null, updated_at = now()
    where id = any(${ids}::uuid[]) and status = 'FAILED'
    returning id`;
  return rows.map((r) => r.id);
}

export async function findNotifications(sql: Sql, ids: string[]): Promise<NotificationRow[]> {
  if (ids.length === 0) return [];
  return sql<NotificationRow[]>`select * from notifications where id = any(${ids}::uuid[])`;
}

/**
 * Clears the dead-letter mark of those of `ids` that are FAILED (again), so maintenance pushes them
 * onto the list once more.
 */
export async function unmarkDeadLettered(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    update notifications set dead_lettered_at = null
    where id = any(${ids}::uuid[]) and status = 'FAILED'`;
}

/**
 * FAILED rows whose id never reached the dead-letter list (Redis was down when they failed, or the
 * worker died in between), older than `graceMs` so the failing worker's own push is not raced.
 */
export async function findUndeadLettered(sql: Sql, graceMs: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from notifications
    where status = 'FAILED' and dead_lettered_at is null
      and updated_at < now() - make_interval(secs => ${graceMs / 1000})
    limit ${limit}`;
  return rows.map((r) => r.id);
}

/** Records that those of `ids` still FAILED are on the dead-letter list. */
export async function markDeadLettered(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    update notifications set dead_lettered_at = now()
    where id = any(${ids}::uuid[]) and status = 'FAILED' and dead_lettered_at is null`;
}

/** Which FAILED rows a dead-letter listing or replay means; every field narrows the set. */
export interface FailedFilter {
  channel?: Channel;
  /** A substring of error_reason, compared case-insensitively. */
  error?: string;
  /** RFC 3339; failed at or after it. */
  since?: string;
  /** RFC 3339; failed before it. */
  until?: string;
}

/** Where a newest-first listing stopped: the last row's failure time (microseconds, UTC) and id. */
export interface FailedPosition {
  at: string;
  id: string;
}

/** A FAILED row with its position, for the next page's cursor. */
export type FailedRow = NotificationRow & { position_at: string };

/**
 * FAILED rows matching `filter`, newest failure first (updated_at is when the row became FAILED),
 * after `after` when given. Answered from PostgreSQL, so it works whatever Redis's list holds.
 */
export async function findFailed(sql: Sql, filter: FailedFilter, after: FailedPosition | undefined, limit: number): Promise<FailedRow[]> {
  return sql<FailedRow[]>`
    select *, ${positionAt(sql)} as position_at from notifications
    where ${failedWhere(sql, filter, after)}
    order by updated_at desc, id desc
    limit ${limit}`;
}

/** Like `findFailed`, only the ids and positions: what a replay walks through. */
export async function findFailedIds(sql: Sql, filter: FailedFilter, after: FailedPosition | undefined, limit: number): Promise<FailedPosition[]> {
  return sql<FailedPosition[]>`
    select id, ${positionAt(sql)} as at from notifications
    where ${failedWhere(sql, filter, after)}
    order by updated_at desc, id desc
    limit ${limit}`;
}

/** updated_at to the microsecond (a JavaScript Date keeps milliseconds only, too coarse for a cursor). */
function positionAt(sql: Sql) {
  return sql`to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

// Times go in as text: typed as timestamptz, postgres.js would pass them through a Date and cut
// them to milliseconds.
function failedWhere(sql: Sql, filter: FailedFilter, after: FailedPosition | undefined) {
  return sql`
    status = 'FAILED'
    ${filter.channel === undefined ? sql`` : sql`and type = ${filter.channel}`}
    ${filter.error === undefined ? sql`` : sql`and strpos(lower(error_reason), lower(${filter.error})) > 0`}
    ${filter.since === undefined ? sql`` : sql`and updated_at >= ${filter.since}::text::timestamptz`}
    ${filter.until === undefined ? sql`` : sql`and updated_at < ${filter.until}::text::timestamptz`}
    ${after === undefined ? sql`` : sql`and (updated_at, id) < (${after.at}::text::timestamptz, ${after.id}::uuid)`}`;
}
