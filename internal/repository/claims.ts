import type { Sql } from '../platform/database.ts';
import type { Channel, NotificationRow } from '../domain/notification.ts';
import type { InboxItem } from '../domain/inboxItem.ts';
import { inboxInsertion } from './inbox.ts';

/** The claim a worker holds: completing needs both, so a stale worker cannot complete a newer attempt. */
export interface Claim {
  id: string;
  attempt: number;
  workerId: string;
}

/**
 * A claimed row, and whether its user has opted out of its channel (asked at claim time, so an
 * opt-out stops whatever has not been sent yet, retries included).
 */
export type ClaimedNotification = NotificationRow & { opted_out: boolean };

/** Identifies one attempt of one notification in `markSentMany`'s answer. */
export function claimKey(claim: Pick<Claim, 'id' | 'attempt'>): string {
  return `${claim.id}#${claim.attempt}`;
}

/** A notification delivered by its claim: stored in its user's inbox and recorded SENT. */
export interface InboxDelivery {
  row: NotificationRow;
  /** Its inbox item, to announce; undefined when an earlier attempt had stored it already. */
  item: InboxItem | undefined;
}

export interface BatchClaim {
  /** Claimed for this worker (PROCESSING, leased): to be delivered and completed. */
  claimed: ClaimedNotification[];
  /** Delivered and recorded SENT by the claim itself. */
  inboxed: InboxDelivery[];
}

type ClaimRow = ClaimedNotification & { delivered: boolean; inbox_seq: number | null };

/**
 * Claims for `workerId` every claimable row among `ids` (PENDING and due; the others are stale or
 * duplicate queue entries, left out of the answer) in one statement, and delivers at once those
 * whose channel is in `inboxChannels` (a channel delivered by a row in PostgreSQL: IN_APP) unless
 * their user opted out: for those, claim, inbox item, SENT and the attempt's record are one
 * transaction, so they go PENDING → SENT without a PROCESSING row that a second statement would
 * have to finish. An IN_APP notification costs one row update instead of two, and the worker one
 * round trip per batch. The others become PROCESSING under a lease of `leaseMs`.
 *
 * The UPDATE itself guards the claim: a claim that waits for another's row lock re-checks
 * `status = 'PENDING'` on the row the other committed and skips it, so no row is claimed twice
 * (no SELECT ... FOR UPDATE first, which wrote every row once more). The rows are updated in the
 * order the plan joins them, which for a batch is an index lookup per id in id order, so two
 * claims of overlapping batches (duplicate queue entries) queue behind each other; should a plan
 * ever lock them in another order and deadlock, PostgreSQL aborts one claim and the worker puts
 * its ids back on the queue. Inbox items take their users' seqs as `inboxInsertion` says.
 */
export async function claimBatch(
  sql: Sql,
  ids: string[],
  workerId: string,
  leaseMs: number,
  inboxChannels: readonly Channel[],
): Promise<BatchClaim> {
  if (ids.length === 0) return { claimed: [], inboxed: [] };
  const rows = await sql<ClaimRow[]>`
    with claimable as (
      select n.id, n.type,
             (not n.critical and exists (
               select 1 from channel_opt_outs o where o.user_id = n.user_id and o.channel = n.type
             )) as opted_out
      from notifications n
      where n.id = any(${ids}::uuid[])
        and n.status = 'PENDING'
        and n.available_at <= now()
      order by n.id
    ), decided as (
      select id, opted_out, (type = any(${inboxChannels as Channel[]}::text[]) and not opted_out) as delivered
      from claimable
    ), claimed as (
      update notifications n
      set status = case when d.delivered then 'SENT' else 'PROCESSING' end,
          attempt = n.attempt + 1,
          locked_by = case when d.delivered then null else ${workerId} end,
          claimed_at = now(),
          lease_expires_at = case when d.delivered then null else now() + make_interval(secs => ${leaseMs / 1000}) end,
          sent_at = case when d.delivered then now() else n.sent_at end,
          error_reason = case when d.delivered then null else n.error_reason end,
          updated_at = now()
      from decided d
      -- The guard again, on the row as it is now: a claim that waited for another one's row lock
      -- re-checks it on the row the other committed, and skips what the other took.
      where n.id = d.id and n.status = 'PENDING' and n.available_at <= now()
      returning n.*, d.opted_out, d.delivered
    ), logged as (
      insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
      select id, attempt, ${workerId}, claimed_at, 'SENT' from claimed where delivered
    ), for_inbox as (
      select id, user_id, title, body, data, created_at from claimed where delivered
    ), ${inboxInsertion(sql)}
    select c.*, i.seq as inbox_seq
    from claimed c left join inboxed i on i.notification_id = c.id`;
  // The rows are handed on as they came (the two extra columns are harmless): copying them without
  // those columns cost more than the rest of this function.
  const result: BatchClaim = { claimed: [], inboxed: [] };
  for (const row of rows) {
    if (!row.delivered) result.claimed.push(row);
    else result.inboxed.push({ row, item: row.inbox_seq === null ? undefined : inboxItemOf(row, row.inbox_seq) });
  }
  return result;
}

/** The item just inserted for `row`: its user's copy of the notification, unread. */
function inboxItemOf(row: NotificationRow, seq: number): InboxItem {
  return {
    notification_id: row.id,
    user_id: row.user_id,
    seq,
    title: row.title,
    body: row.body,
    data: row.data,
    created_at: row.created_at,
    read_at: null,
    archived_at: null,
  };
}

/**
 * Hands a claim back without counting it as a failure (a stopping worker that could not finish in
 * its grace period). The row is due at once, so the next maintenance run queues it for another worker.
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
