import type { Sql } from '../platform/database.ts';
import { claimKey, type Claim } from './claims.ts';

/**
 * Marks a batch of delivered attempts SENT in one statement, each fenced by its own (id, attempt):
 * an attempt whose claim was taken over is left alone and missing from the answer (a set of
 * `claimKey`s), without holding back the others. Each recorded attempt gets its
 * notification_attempts row in the same statement.
 */
export async function markSentMany(sql: Sql, claims: Claim[]): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const ids = claims.map((c) => c.id);
  const attempts = claims.map((c) => c.attempt);
  const workers = claims.map((c) => c.workerId);
  const rows = await sql<{ id: string; attempt: number }[]>`
    with done as (
      select * from unnest(${ids}::uuid[], ${attempts}::int[], ${workers}::text[]) as d(id, attempt, worker_id)
    ), sent as (
      update notifications n
      set status = 'SENT', sent_at = now(), error_reason = null,
          locked_by = null, lease_expires_at = null, updated_at = now()
      from done
      where n.id = done.id and n.status = 'PROCESSING' and n.attempt = done.attempt
      returning n.id, n.attempt, n.claimed_at, done.worker_id
    ), logged as (
      insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
      select id, attempt, worker_id, claimed_at, 'SENT' from sent
    )
    select id, attempt from sent`;
  return new Set(rows.map(claimKey));
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
 * the claim was lost (or, for `LEASE_EXPIRED`, when its lease had been renewed meanwhile).
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
        -- A take-over applies only to a lease that has run out by now: a renewal that committed
        -- since the rescuer read the row keeps the claim its worker's.
        and (${failure.outcome !== 'LEASE_EXPIRED'} or lease_expires_at < now())
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
 * Ends a claimed attempt without delivering it, on purpose (the user opted out of the channel):
 * SKIPPED, with `reason` in error_reason. False when the claim was lost.
 */
export async function markSkipped(sql: Sql, claim: Claim, reason: string): Promise<boolean> {
  const rows = await sql`
    with skipped as (
      update notifications
      set status = 'SKIPPED', error_reason = ${reason},
          locked_by = null, lease_expires_at = null, updated_at = now()
      where id = ${claim.id} and status = 'PROCESSING' and attempt = ${claim.attempt}
      returning id, attempt, claimed_at
    )
    insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome, error)
    select id, attempt, ${claim.workerId}, claimed_at, 'SKIPPED', ${reason} from skipped
    returning notification_id`;
  return rows.length === 1;
}
