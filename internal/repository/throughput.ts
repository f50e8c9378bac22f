import type { Sql } from '../platform/database.ts';

/** One minute of traffic: notifications created in it, sent in it, and failed in it (and FAILED still). */
export interface MinuteCounts {
  minute: Date;
  created: number;
  sent: number;
  failed: number;
}

/**
 * Per-minute counts for the last `minutes` minutes, the current (partial) minute last, every minute
 * present even when nothing happened in it.
 *
 * - created: by created_at.
 * - sent: SENT rows by sent_at. Found through the notifications_finished index on updated_at, which
 *   a SENT row sets with sent_at and never moves after.
 * - failed: rows FAILED now, by updated_at (when they failed), through the notifications_failed
 *   index. A replayed dead letter is no longer FAILED and leaves its minute's count.
 *
 * Every part is bounded by the window's start, so only the window's rows are counted; created_at
 * has no index, though, so that part is a sequential scan filtered on it (tens of milliseconds per
 * few hundred thousand rows). The three parts are one list of events grouped once, rather than three
 * aggregates joined: joins of aggregates make the planner expect millions of rows and compile the
 * query (JIT), which costs more than running it.
 */
export async function countPerMinute(sql: Sql, minutes: number): Promise<MinuteCounts[]> {
  return sql<MinuteCounts[]>`
    with window_start as (
      select date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}) as at
    ),
    events as (
      select date_trunc('minute', created_at) as minute, 'created' as kind
      from notifications
      where created_at >= (select at from window_start)
      union all
      select date_trunc('minute', sent_at), 'sent'
      from notifications
      where status = 'SENT'
        and updated_at >= (select at from window_start)
        and sent_at >= (select at from window_start)
      union all
      select date_trunc('minute', updated_at), 'failed'
      from notifications
      where status = 'FAILED' and updated_at >= (select at from window_start)
    ),
    window_minutes as (
      select (select at from window_start) + make_interval(mins => i) as minute
      from generate_series(0, ${minutes - 1}::int) as i
    )
    select m.minute,
           count(*) filter (where e.kind = 'created')::float8 as created,
           count(*) filter (where e.kind = 'sent')::float8 as sent,
           count(*) filter (where e.kind = 'failed')::float8 as failed
    from window_minutes m
    left join events e on e.minute = m.minute
    group by m.minute
    order by m.minute`;
}
