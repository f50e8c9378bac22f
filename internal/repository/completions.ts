import type { Sql } from '../platform/database.ts';
import type { NotificationRow } from '../domain/notification.ts';
import { claimBatch, claimKey, type Claim, type ClaimedNotification } from './claims.ts';
import type { InboxItem } from '../domain/inboxItem.ts';
import { inboxInsertion } from './inbox.ts';

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
): Promise<ClaimedNotification | undefined> {
  const [row] = await claimNotifications(sql, [id], workerId, leaseMs);
  return row;
}

/**
 * Claims every claimable row among `ids` in one statement; the rows returned are this worker's, ids
 * missing from the answer were stale entries. `claimBatch` without delivering any channel in the
 * claim.
 */
export async function claimNotifications(
  sql: Sql,
  ids: string[],
  workerId: string,
  leaseMs: number,
): Promise<ClaimedNotification[]> {
  return (await claimBatch(sql, ids, workerId, leaseMs, [])).claimed;
}

/** Marks the claimed attempt delivered. False when the claim was lost (its lease ran out and another took over). */
export async function markSent(sql: Sql, claim: Claim): Promise<boolean> {
  const recorded = await markSentMany(sql, [{ claim, storeInInbox: false }]);
  return recorded.has(claimKey(claim));
}

/** One delivered attempt to record; `storeInInbox` also puts the notification in its user's inbox. */
export interface Completion {
  claim: Claim;
  storeInInbox: boolean;
}

/**
 * Marks a batch of delivered attempts SENT in one statement, each fenced by its own (id, attempt):
 * an attempt whose claim was taken over is left alone and missing from the answer (keyed by
 * `claimKey`), without holding back the others. Each recorded attempt gets its
 * notification_attempts row, and those asking for it their inbox item (answered with it, to
 * announce), in the same transaction, so an IN_APP notification is in the inbox exactly when it is
 * SENT.
 *
 * Inbox items take their users' next seqs as `inboxInsertion` says.
 */
export async function markSentMany(sql: Sql, completions: Completion[]): Promise<Map<string, InboxItem | undefined>> {
  if (completions.length === 0) return new Map();
  const ids = completions.map((c) => c.claim.id);
  const attempts = completions.map((c) => c.claim.attempt);
  const workers = completions.map((c) => c.claim.workerId);
  // As 0/1: postgres.js does not send a JavaScript boolean array as bool[].
  const inbox = completions.map((c) => (c.storeInInbox ? 1 : 0));
  const rows = await sql<({ id: string; attempt: number } & Partial<InboxItem>)[]>`
    with done as (
      select * from unnest(${ids}::uuid[], ${attempts}::int[], ${workers}::text[], ${inbox}::int[])
        as d(id, attempt, worker_id, store_in_inbox)
    ), sent as (
      update notifications n
      set status = 'SENT', sent_at = now(), error_reason = null,
          locked_by = null, lease_expires_at = null, updated_at = now()
      from done
      where n.id = done.id and n.status = 'PROCESSING' and n.attempt = done.attempt
      returning n.id, n.attempt, n.claimed_at, n.user_id, n.title, n.body, n.data, n.created_at,
                done.worker_id, done.store_in_inbox
    ), logged as (
      insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
      select id, attempt, worker_id, claimed_at, 'SENT' from sent
    ), for_inbox as (
      select id, user_id, title, body, data, created_at from sent where store_in_inbox = 1
    ), ${inboxInsertion(sql)}
    select s.id, s.attempt, i.*
    from sent s left join inboxed i on i.notification_id = s.id`;
  return new Map(
    rows.map(({ id, attempt, ...item }) => [claimKey({ id, attempt }), item.notification_id ? (item as InboxItem) : undefined]),
  );
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
