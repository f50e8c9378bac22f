import type { Sql } from '../platform/database.ts';
import { STATUSES, type Status } from '../domain/notification.ts';

// Counts are float8: exact far beyond int's 2^31 rows, and postgres.js reads them as numbers
// (a bigint would arrive as a string).

export interface NotificationCounts {
  byStatus: Record<Status, number>;
  /** Mean created_at → sent_at of the notifications SENT within `withinSeconds`; null when none was. */
  averageDeliveryMs: number | null;
}

/**
 * Notifications by status, and the mean delivery time of the recent SENT ones, in one pass.
 *
 * This reads the whole table (a sequential scan): no index answers "how many SENT" and none is
 * kept on sent_at. That is fine for an operator's occasional look; on a table of hundreds of
 * millions of rows it takes seconds, so do not poll it like a metric (Prometheus has those). The
 * hot questions (due, queued, expired, undead-lettered rows) have partial indexes of their own.
 */
export async function countNotifications(sql: Sql, withinSeconds: number): Promise<NotificationCounts> {
  const rows = await sql<{ status: Status; n: number; average_ms: number | null }[]>`
    select status, count(*)::float8 as n,
           round(avg(extract(epoch from sent_at - created_at) * 1000)
                 filter (where status = 'SENT' and sent_at > now() - make_interval(secs => ${withinSeconds})))::float8
             as average_ms
    from notifications
    group by status`;
  const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
  for (const row of rows) byStatus[row.status] = row.n;
  return { byStatus, averageDeliveryMs: rows.find((r) => r.status === 'SENT')?.average_ms ?? null };
}

export interface AttemptCounts {
  /** Attempts that did not deliver: RETRY, LEASE_EXPIRED (its worker died or hung) and FAILED. */
  failedAttempts: number;
  /** Failed attempts after which another was scheduled: RETRY and LEASE_EXPIRED. */
  retries: number;
}

/** Failed attempts and retries over the whole history: a sequential scan of notification_attempts, as above. */
export async function countFailedAttempts(sql: Sql): Promise<AttemptCounts> {
  const [row] = await sql<{ failed_attempts: number; retries: number }[]>`
    select count(*) filter (where outcome in ('RETRY', 'LEASE_EXPIRED', 'FAILED'))::float8 as failed_attempts,
           count(*) filter (where outcome in ('RETRY', 'LEASE_EXPIRED'))::float8 as retries
    from notification_attempts`;
  return { failedAttempts: row!.failed_attempts, retries: row!.retries };
}

/**
 * Workers seen lately: those that finished an attempt within `withinSeconds`, or hold a live claim
 * on a notification or a fan-out now. An idle worker with nothing to do does not show: PostgreSQL
 * only knows workers by what they did. The claims come from partial indexes; the recent attempts
 * from a scan of notification_attempts (no index on finished_at).
 */
export async function countActiveWorkers(sql: Sql, withinSeconds: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(distinct worker)::float8 as n
    from (
      select worker_id as worker from notification_attempts
      where finished_at > now() - make_interval(secs => ${withinSeconds})
      union all
      select locked_by from notifications
      where status = 'PROCESSING' and lease_expires_at > now()
      union all
      select locked_by from fanouts
      where status = 'RUNNING' and lease_expires_at > now()
    ) seen
    where worker is not null`;
  return row!.n;
}
