import type { Sql } from '../database.ts';
import type { NotificationRow } from '../notification.ts';

/** The claim a worker holds: completing needs both, so a stale worker cannot complete a newer attempt. */
export interface Claim {
  id: string;
  attempt: number;
  workerId: string;
}

/**
 * Takes a PENDING, due notification for `workerId` until the lease runs out. Returns undefined when
 * the row is not claimable (already taken, finished, or waiting for its retry time): the queue entry
 * was a stale or duplicate one and is simply dropped.
 */
export async function claimNotification(
  sql: Sql,
  id: string,
  workerId: string,
  leaseMs: number,
): Promise<NotificationRow | undefined> {
  const [row] = await sql<NotificationRow[]>`
    update notifications
    set status = 'PROCESSING',
        attempt = attempt + 1,
        locked_by = ${workerId},
        claimed_at = now(),
        lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}),
        updated_at = now()
    where id = ${id}
      and status = 'PENDING'
      and available_at <= now()
    returning *`;
  return row;
}

/** Marks the claimed attempt delivered. False when the claim was lost (its lease ran out and another took over). */
export async function markSent(sql: Sql, claim: Claim): Promise<boolean> {
  const rows = await sql`
    with sent as (
      update notifications
      set status = 'SENT', sent_at = now(), error_reason = null,
          locked_by = null, lease_expires_at = null, updated_at = now()
      where id = ${claim.id} and status = 'PROCESSING' and attempt = ${claim.attempt}
      returning id, attempt, claimed_at
    )
    insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
    select id, attempt, ${claim.workerId}, claimed_at, 'SENT' from sent
    returning notification_id`;
  return rows.length === 1;
}

export interface Failure {
  reason: string;
  /** Skip the remaining retries. */
  permanent: boolean;
  maxRetries: number;
  /** Wait before the next attempt, used when the notification goes back to PENDING. */
  retryDelayMs: number;
  outcome?: 'RETRY' | 'LEASE_EXPIRED';
}

/**
 * Records a failed attempt: retry_count + 1, then back to PENDING after `retryDelayMs` while retries
 * remain and the failure is not permanent, else FAILED. Returns the new status, or undefined when
 * the claim was lost.
 */
export async function recordFailure(
  sql: Sql,
  claim: Claim,
  failure: Failure,
): Promise<'PENDING' | 'FAILED' | undefined> {
  const [row] = await sql<{ status: 'PENDING' | 'FAILED' }[]>`
    with failed as (
      update notifications
      set retry_count = retry_count + 1,
          status = case when ${failure.permanent} or retry_count + 1 >= ${failure.maxRetries}
                        then 'FAILED' else 'PENDING' end,
          error_reason = ${failure.reason},
          available_at = now() + make_interval(secs => ${failure.retryDelayMs / 1000}),
          queued_at = null,
          dead_lettered_at = null,
          locked_by = null,
          lease_expires_at = null,
          updated_at = now()
      where id = ${claim.id} and status = 'PROCESSING' and attempt = ${claim.attempt}
      returning id, attempt, claimed_at, status
    ), logged as (
      insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome, error)
      select id, attempt, ${claim.workerId}, claimed_at,
             case when status = 'FAILED' then 'FAILED' else ${failure.outcome ?? 'RETRY'} end,
             ${failure.reason}
      from failed
    )
    select status from failed`;
  return row?.status;
}

/**
 * Hands a claim back without counting it as a failure (a stopping worker that could not finish in
 * its grace period). The row is due at once, so the next sweep queues it for another worker.
 */
export async function releaseClaim(sql: Sql, claim: Claim): Promise<boolean> {
  const rows = await sql`
    with released as (
      update notifications
      set status = 'PENDING', available_at = now(), queued_at = null,
          locked_by = null, lease_expires_at = null, updated_at = now()
      where id = ${claim.id} and status = 'PROCESSING' and attempt = ${claim.attempt}
      returning id, attempt, claimed_at
    )
    insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
    select id, attempt, ${claim.workerId}, claimed_at, 'RELEASED' from released
    returning notification_id`;
  return rows.length === 1;
}
