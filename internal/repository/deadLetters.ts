import type { Sql } from '../database.ts';
import type { NotificationRow } from '../notification.ts';

/**
 * Puts FAILED notifications back to PENDING with a fresh retry budget, marked as queued now (the
 * caller pushes them; a lost push is repaired by the sweeper). Rows that are not FAILED are left
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
 * Clears the dead-letter mark of those of `ids` that are FAILED (again), so the sweeper pushes them
 * onto the list once more.
 */
export async function unmarkDeadLettered(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    update notifications set dead_lettered_at = null
    where id = any(${ids}::uuid[]) and status = 'FAILED'`;
}
