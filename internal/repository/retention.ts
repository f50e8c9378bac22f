import type { Sql } from '../platform/database.ts';

/**
 * Deletes up to `limit` finished notifications (SENT, FAILED, SKIPPED) that finished more than
 * `retentionDays` ago, oldest first; their attempts and Idempotency-Key go with them (ON DELETE
 * CASCADE), inbox items stay (they are the user's copy). Rows another cleaner or a replay holds are
 * skipped, not waited for, so the statement holds a few locks briefly and never queues behind work.
 * Returns the number deleted.
 */
export async function deleteExpiredNotifications(sql: Sql, retentionDays: number, limit: number): Promise<number> {
  // `= any(array(...))` rather than `in (...)`: the planner may answer `in` with a hash join over
  // a sequential scan of the whole table; an array makes it look each id up by primary key.
  const result = await sql`
    delete from notifications
    where id = any(array(
      select id from notifications
      where status in ('SENT', 'FAILED', 'SKIPPED')
        and updated_at < now() - make_interval(days => ${retentionDays})
      order by updated_at
      limit ${limit}
      for update skip locked
    ))`;
  return result.count;
}
