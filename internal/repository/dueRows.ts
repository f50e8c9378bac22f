import type postgres from 'postgres';
import type { Sql } from '../platform/database.ts';

/**
 * Marks up to `limit` PENDING rows that are due and not queued (a retry whose wait is over, a
 * released claim) as queued now and returns their ids, for the caller to push.
 */
export async function takeUnqueued(sql: Sql, limit: number): Promise<string[]> {
  return markQueued(sql, sql`queued_at is null and available_at <= now()`, sql`available_at`, limit);
}

/**
 * Like `takeUnqueued`, for PENDING rows queued more than `staleAfterMs` ago that nobody claimed:
 * their queue entry was lost with Redis, or the push after the insert failed.
 */
export async function takeStaleQueued(sql: Sql, staleAfterMs: number, limit: number): Promise<string[]> {
  return markQueued(sql, sql`queued_at < now() - make_interval(secs => ${staleAfterMs / 1000})`, sql`queued_at`, limit);
}

/** A piece of a statement, made with `sql` and its values bound. */
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * The one take both share: PENDING rows matching `which`, first by `order`, marked queued now.
 * SKIP LOCKED lets two takers (a leader being replaced, say) share the rows without waiting, and
 * never hands one row to both.
 */
async function markQueued(sql: Sql, which: Fragment, order: Fragment, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update notifications n
    set queued_at = now()
    from (
      select id from notifications
      where status = 'PENDING' and ${which}
      order by ${order}
      limit ${limit}
      for update skip locked
    ) taken
    where n.id = taken.id
    returning n.id`;
  return rows.map((r) => r.id);
}
