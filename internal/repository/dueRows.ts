import type { Sql } from '../platform/database.ts';

/**
 * Marks up to `limit` PENDING rows that are due and not queued (a retry whose wait is over, a
 * released claim) as queued now and returns their ids, for the caller to push. SKIP LOCKED lets two
 * takers (a leader being replaced, say) share the rows without waiting, and never hands one row to
 * both; `takePassedOver` takes the same way.
 */
export async function takeUnqueued(sql: Sql, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update notifications n
    set queued_at = now()
    from (
      select id from notifications
      where status = 'PENDING' and queued_at is null and available_at <= now()
      order by available_at
      limit ${limit}
      for update skip locked
    ) taken
    where n.id = taken.id
    returning n.id`;
  return rows.map((r) => r.id);
}

/**
 * The queue's place in line: when the oldest entries still in the queue were queued, read from
 * their rows (`oldestIds`, the ids the next pops take; the earliest `queued_at` among those still
 * PENDING, so one stale entry cannot move it on). The queue is first in, first out, so an entry
 * queued well before this place has been popped already. For an empty queue the place is now,
 * which needs no statement of its own: PostgreSQL reads the text `'now'` as `now()` (the start of
the transaction) where `takePassedOver` turns the place into a time.
 * Undefined when none of the ids names a queued PENDING row (the next sweep looks again).
 */
export async function queuePlace(sql: Sql, oldestIds: string[]): Promise<QueuePlace | undefined> {
  if (oldestIds.length === 0) return 'now';
  const [row] = await sql<{ place: string | null }[]>`
    select min(queued_at)::text as place from notifications
    where id = any(${oldestIds}::uuid[]) and status = 'PENDING' and queued_at is not null`;
  return row?.place ?? undefined;
}

/**
 * A time as PostgreSQL wrote it (or `'now'`), handed back to it unchanged (as text: postgres.js sends a
 * timestamptz parameter through `Date`, which drops the microseconds), so the rows put back are
 * marked at exactly the place of the entries beside them.
 */
export type QueuePlace = string;

/**
 * PENDING rows the queue has passed by: queued more than `marginMs` before `place` (see
 * `queuePlace`) and still unclaimed, so their entry was popped and lost (a flush, a pop whose reply
 * never came, a worker that died between its pop and its claim), or their push after the insert
 * failed. The margin covers pushes that follow their `queued_at` late and claims still under way.
 * Marks up to `limit` of them queued at `place` (they are put back at the front of the line, beside
 * the entries of that time) and returns their ids, those queued earliest first.
 */
export async function takePassedOver(sql: Sql, place: QueuePlace, marginMs: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string; was_queued_at: Date }[]>`
    update notifications n
    set queued_at = ${place}::text::timestamptz
    from (
      select id, queued_at from notifications
      where status = 'PENDING' and queued_at < ${place}::text::timestamptz - make_interval(secs => ${marginMs / 1000})
      order by queued_at
      limit ${limit}
      for update skip locked
    ) taken
    where n.id = taken.id
    returning n.id, taken.queued_at as was_queued_at`;
  return [...rows]
    .sort((a, b) => a.was_queued_at.getTime() - b.was_queued_at.getTime())
    .map((r) => r.id);
}
