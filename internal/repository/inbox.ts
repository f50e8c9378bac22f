import type postgres from 'postgres';
import type { Sql } from '../platform/database.ts';
import type { InboxItem } from '../domain/inboxItem.ts';

const ITEM_COLUMNS = ['notification_id', 'user_id', 'seq', 'title', 'body', 'data', 'created_at', 'read_at', 'archived_at'];

/**
 * The CTEs that put the rows of a CTE named `for_inbox` in their users' inboxes, for a statement
 * that records deliveries (`claimBatch`). `for_inbox` has each delivered
 * notification's id, user_id, title, body, data and created_at; `inboxed` returns the items stored.
 *
 * A notification an earlier attempt stored already (a worker that died before recording SENT) is
 * left out, so it takes no second seq. A user's rows take the next seqs in created_at order; each
 * user's counter row moves on by their count and stays locked until COMMIT, so one user's items
 * commit in seq order; counters are taken in user_id order, so two statements never wait on each
 * other in a cycle.
 */
export function inboxInsertion(sql: Sql): postgres.Fragment {
  return sql`
    to_inbox as (
      -- "offset 0" keeps the check a primary-key lookup per row: planned as a join while the inbox
      -- was nearly empty, it scanned the whole table on every later run of the statement.
      select f.*, row_number() over (partition by f.user_id order by f.created_at, f.id) as k,
             count(*) over (partition by f.user_id) as n
      from for_inbox f
      where not exists (select 1 from inbox_items i where i.notification_id = f.id offset 0)
    ), counters as (
      insert into inbox_counters as c (user_id, last_seq)
      select user_id, max(n) from to_inbox group by user_id order by user_id
      on conflict (user_id) do update set last_seq = c.last_seq + excluded.last_seq
      returning user_id, last_seq
    ), inboxed as (
      insert into inbox_items (notification_id, user_id, title, body, data, created_at, seq)
      select t.id, t.user_id, t.title, t.body, t.data, t.created_at, c.last_seq - t.n + t.k
      from to_inbox t join counters c on c.user_id = t.user_id
      on conflict (notification_id) do nothing
      returning ${sql(ITEM_COLUMNS)}
    )`;
}

export interface InboxPage {
  /** At most this many items. */
  limit: number;
  /** Only items older than this seq (the previous page's last). */
  beforeSeq?: number;
  unreadOnly?: boolean;
}

/** A user's inbox, newest first, without archived items. */
export async function listInbox(sql: Sql, userId: string, page: InboxPage): Promise<InboxItem[]> {
  return sql<InboxItem[]>`
    select ${sql(ITEM_COLUMNS)} from inbox_items
    where user_id = ${userId} and archived_at is null
      ${page.beforeSeq === undefined ? sql`` : sql`and seq < ${page.beforeSeq}`}
      ${page.unreadOnly ? sql`and read_at is null` : sql``}
    order by seq desc
    limit ${page.limit}`;
}

/**
 * Items after `afterSeq`, oldest first: what a client that has seen `afterSeq` has missed. Archived
 * items are left out, as from the list: the user put them away.
 */
export async function listInboxAfter(sql: Sql, userId: string, afterSeq: number, limit: number): Promise<InboxItem[]> {
  return sql<InboxItem[]>`
    select ${sql(ITEM_COLUMNS)} from inbox_items
    where user_id = ${userId} and seq > ${afterSeq} and archived_at is null
    order by seq
    limit ${limit}`;
}

export async function countUnread(sql: Sql, userId: string): Promise<number> {
  const [row] = await sql<{ count: number }[]>`
    select count(*)::int as count from inbox_items
    where user_id = ${userId} and read_at is null and archived_at is null`;
  return row!.count;
}

/** Marks one item read; false when the user has no such item. Reading twice keeps the first time. */
export async function markRead(sql: Sql, userId: string, notificationId: string): Promise<boolean> {
  return stampOnce(sql, userId, notificationId, 'read_at');
}

/** Marks every unread item read; returns how many. */
export async function markAllRead(sql: Sql, userId: string): Promise<number> {
  const rows = await sql`
    update inbox_items set read_at = now()
    where user_id = ${userId} and read_at is null and archived_at is null
    returning notification_id`;
  return rows.length;
}

/** Archives one item (it leaves the list and the unread count); false when the user has no such item. */
export async function archive(sql: Sql, userId: string, notificationId: string): Promise<boolean> {
  return stampOnce(sql, userId, notificationId, 'archived_at');
}

/** Sets one item's timestamp column to now unless it is set already: a repeat keeps the first time. */
async function stampOnce(sql: Sql, userId: string, notificationId: string, column: 'read_at' | 'archived_at'): Promise<boolean> {
  const rows = await sql`
    update inbox_items set ${sql(column)} = coalesce(${sql(column)}, now())
    where user_id = ${userId} and notification_id = ${notificationId}
    returning notification_id`;
  return rows.length === 1;
}
