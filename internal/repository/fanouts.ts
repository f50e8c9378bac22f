import type { Sql, Tx } from '../platform/database.ts';
import { IdempotencyConflictError } from '../domain/errors.ts';
import type { Channel, NotificationRow, Status } from '../domain/notification.ts';
import { claimIdempotencyKey, type IdempotencyClaim } from './idempotencyKeys.ts';
import { insertRows, type NewNotification } from './notifications.ts';

export interface FanoutRow {
  id: string;
  topic: string | null;
  type: Channel;
  title: string | null;
  body: string;
  html: string | null;
  data: Record<string, unknown> | null;
  critical: boolean;
  status: 'RUNNING' | 'DONE';
  cursor: string | null;
  created_count: number;
  attempt: number;
  locked_by: string | null;
  lease_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** What a caller supplies for a new fan-out. */
export type NewFanout = Pick<FanoutRow, 'id' | 'topic' | 'type' | 'title' | 'body' | 'html' | 'data' | 'critical'>;

/** One notification of a fan-out, as its creator answers it. */
export type FanoutMember = Pick<NotificationRow, 'id' | 'user_id' | 'status'>;

export interface FanoutInsertResult {
  fanout: FanoutRow;
  /** The notifications created for a list of users (all of them, for a repeat too); empty for a topic. */
  members: FanoutMember[];
  /** False when an earlier request with the same Idempotency-Key created `fanout`. */
  created: boolean;
}

/**
 * Creates a fan-out to a list of users: the fan-out row (DONE at once) and one PENDING notification
 * per user, in one transaction. With an idempotency key, a repeat creates nothing and gets the
 * first request's fan-out. `beforeCommit` runs last inside the transaction.
 */
export async function insertUserFanout(
  sql: Sql,
  fanout: NewFanout,
  notifications: NewNotification[],
  idempotency: IdempotencyClaim | undefined,
  beforeCommit: () => void,
): Promise<FanoutInsertResult> {
  return createOnce(sql, fanout.id, idempotency, beforeCommit, async (tx) => {
    const row = await insertFanoutRow(tx, fanout, 'DONE', notifications.length);
    const rows = await insertRows(tx, notifications);
    return { fanout: row, members: rows.map(({ id, user_id, status }) => ({ id, user_id, status })), created: true };
  });
}

/**
 * Creates a fan-out to a topic's subscribers, RUNNING: workers create its notifications in
 * batches (`advanceTopicFanout`). Only users subscribed by now are reached.
 */
export async function insertTopicFanout(
  sql: Sql,
  fanout: NewFanout,
  idempotency: IdempotencyClaim | undefined,
  beforeCommit: () => void,
): Promise<FanoutInsertResult> {
  return createOnce(sql, fanout.id, idempotency, beforeCommit, async (tx) => {
    const row = await insertFanoutRow(tx, fanout, 'RUNNING', 0);
    return { fanout: row, members: [], created: true };
  });
}

/**
 * Runs `create` in one transaction, unless the idempotency key names a fan-out an earlier request
 * created: that one is answered instead and nothing is created. `beforeCommit` runs last either way.
 */
async function createOnce(
  sql: Sql,
  fanoutId: string,
  idempotency: IdempotencyClaim | undefined,
  beforeCommit: () => void,
  create: (tx: Tx) => Promise<FanoutInsertResult>,
): Promise<FanoutInsertResult> {
  return sql.begin(async (tx) => {
    const result = (await earlierFanout(tx, fanoutId, idempotency)) ?? (await create(tx));
    beforeCommit();
    return result;
  });
}

async function earlierFanout(
  tx: Tx,
  fanoutId: string,
  idempotency: IdempotencyClaim | undefined,
): Promise<FanoutInsertResult | undefined> {
  if (!idempotency) return undefined;
  const earlier = await claimIdempotencyKey(tx, idempotency, { fanoutId });
  if (!earlier) return undefined;
  const found = earlier.fanoutId ? await findFanoutResult(tx, earlier.fanoutId) : undefined;
  if (!found) throw new IdempotencyConflictError(`Idempotency-Key "${idempotency.key}" was already used with a different request`);
  return found;
}

/** A fan-out as its creator answered it (with every notification of a user list), as a repeat gets it. */
export async function findFanoutResult(sql: Sql | Tx, fanoutId: string): Promise<FanoutInsertResult | undefined> {
  const [fanout] = await sql<FanoutRow[]>`select * from fanouts where id = ${fanoutId}`;
  if (!fanout) return undefined;
  const members = fanout.topic === null ? await fanoutMembers(sql, fanout.id) : [];
  return { fanout, members, created: false };
}

async function insertFanoutRow(tx: Tx, fanout: NewFanout, status: FanoutRow['status'], created: number): Promise<FanoutRow> {
  const [row] = await tx<FanoutRow[]>`
    insert into fanouts (id, topic, type, title, body, html, data, critical, status, created_count, finished_at)
    values (
      ${fanout.id}, ${fanout.topic}, ${fanout.type}, ${fanout.title}, ${fanout.body}, ${fanout.html},
      ${fanout.data === null ? null : tx.json(fanout.data as never)}, ${fanout.critical}, ${status}, ${created},
      ${status === 'DONE' ? tx`now()` : null}
    )
    returning *`;
  return row!;
}

async function fanoutMembers(sql: Sql | Tx, fanoutId: string): Promise<FanoutMember[]> {
  return sql<FanoutMember[]>`
    select id, user_id, status from notifications where fanout_id = ${fanoutId} order by user_id`;
}

export async function findFanout(sql: Sql, id: string): Promise<FanoutRow | undefined> {
  const [row] = await sql<FanoutRow[]>`select * from fanouts where id = ${id}`;
  return row;
}

/** How many of a fan-out's notifications are in each status. */
export async function countFanoutStatuses(sql: Sql, id: string): Promise<Partial<Record<Status, number>>> {
  const rows = await sql<{ status: Status; count: number }[]>`
    select status, count(*)::int as count from notifications where fanout_id = ${id} group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.count]));
}

/** A worker's hold on a RUNNING fan-out, fenced like a notification's claim. */
export interface FanoutClaim {
  id: string;
  attempt: number;
}

/**
 * Takes the oldest RUNNING fan-out nobody holds (or whose holder's lease ran out) for `workerId`.
 * `skip locked`: workers looking at the same moment take different fan-outs.
 */
export async function claimRunningFanout(sql: Sql, workerId: string, leaseMs: number): Promise<FanoutClaim | undefined> {
  const [row] = await sql<FanoutClaim[]>`
    update fanouts
    set attempt = attempt + 1, locked_by = ${workerId},
        lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
    where id = (
      select id from fanouts
      where status = 'RUNNING' and (lease_expires_at is null or lease_expires_at < now())
      order by created_at
      limit 1
      for update skip locked
    )
    returning id, attempt`;
  return row;
}

export interface FanoutProgress {
  /** Undefined when the claim was lost (another worker took the fan-out over): stop. */
  status: FanoutRow['status'] | undefined;
  /** Ids of the PENDING notifications this batch created, to queue. */
  queued: string[];
  created: number;
}

/**
 * Creates the next batch of a topic fan-out's notifications, one statement (so one transaction):
 * the next `batchSize` subscribers after the cursor, in user_id order, who subscribed before the
 * fan-out was created. Each gets a notification addressed from their profile, or SKIPPED with the
 * reason when they have no address for the channel. The cursor moves in the same transaction and
 * the (fanout_id, user_id) unique index refuses a second notification, so a batch redone after a
 * crash creates nothing twice. The fan-out is DONE when a batch comes back short.
 */
export async function advanceTopicFanout(
  sql: Sql,
  claim: FanoutClaim,
  batchSize: number,
  leaseMs: number,
): Promise<FanoutProgress> {
  const [row] = await sql<{ status: FanoutRow['status'] | null; queued: string[]; created: number }[]>`
    with f as (
      select * from fanouts
      where id = ${claim.id} and attempt = ${claim.attempt} and status = 'RUNNING'
      for update
    ), batch as (
      select s.user_id,
        case f.type when 'EMAIL' then r.email when 'SMS' then r.phone when 'WEBHOOK' then r.webhook_url end as recipient,
        case f.type
          when 'IN_APP' then true
          when 'PUSH' then exists (select 1 from push_subscriptions p where p.user_id = s.user_id)
          else (case f.type when 'EMAIL' then r.email when 'SMS' then r.phone when 'WEBHOOK' then r.webhook_url end) is not null
        end as reachable
      from f
      join topic_subscriptions s
        on s.topic = f.topic and s.subscribed_at <= f.created_at and (f.cursor is null or s.user_id > f.cursor)
      left join recipients r on r.user_id = s.user_id
      order by s.user_id
      limit ${batchSize}
    ), inserted as (
      insert into notifications
        (id, user_id, type, title, body, html, data, critical, fanout_id, recipient, status, error_reason, queued_at)
      select gen_random_uuid(), b.user_id, f.type, f.title, f.body, f.html, f.data, f.critical, f.id, b.recipient,
        case when b.reachable then 'PENDING' else 'SKIPPED' end,
        case when not b.reachable then 'not sent: user has no ' || f.type || ' address on file' end,
        case when b.reachable then clock_timestamp() end
      from batch b cross join f
      on conflict (fanout_id, user_id) where fanout_id is not null do nothing
      returning id, status
    ), advanced as (
      update fanouts
      set cursor = coalesce((select max(user_id) from batch), cursor),
          created_count = created_count + (select count(*) from inserted),
          status = case when (select count(*) from batch) < ${batchSize} then 'DONE' else 'RUNNING' end,
          finished_at = case when (select count(*) from batch) < ${batchSize} then now() end,
          locked_by = case when (select count(*) from batch) < ${batchSize} then null else locked_by end,
          lease_expires_at = case when (select count(*) from batch) < ${batchSize} then null
                                  else now() + make_interval(secs => ${leaseMs / 1000}) end,
          updated_at = now()
      where id in (select id from f)
      returning status
    )
    select
      (select status from advanced) as status,
      (select coalesce(array_agg(id), '{}') from inserted where status = 'PENDING') as queued,
      (select count(*)::int from inserted) as created`;
  return { status: row?.status ?? undefined, queued: row?.queued ?? [], created: row?.created ?? 0 };
}

/** Lets go of a fan-out before its lease runs out (a stopping worker), so another takes it at once. */
export async function releaseFanout(sql: Sql, claim: FanoutClaim): Promise<void> {
  await sql`
    update fanouts set locked_by = null, lease_expires_at = null, updated_at = now()
    where id = ${claim.id} and attempt = ${claim.attempt} and status = 'RUNNING'`;
}
