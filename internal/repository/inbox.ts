import type { Sql } from '../database.ts';
import type { NotificationRow } from '../notification.ts';

export interface InboxItem {
  notification_id: string;
  user_id: string;
  title: string | null;
  body: string;
  data: Record<string, unknown> | null;
  created_at: Date;
  read_at: Date | null;
}

/** Puts an IN_APP notification in its user's inbox. Idempotent: a repeated attempt adds nothing. */
export async function storeInInbox(sql: Sql, n: NotificationRow): Promise<void> {
  await sql`
    insert into inbox_items (notification_id, user_id, title, body, data, created_at)
    values (${n.id}, ${n.user_id}, ${n.title}, ${n.body}, ${n.data === null ? null : sql.json(n.data as never)}, ${n.created_at})
    on conflict (notification_id) do nothing`;
}

/** A user's inbox, newest first. */
export async function listInbox(sql: Sql, userId: string, limit: number): Promise<InboxItem[]> {
  return sql<InboxItem[]>`
    select notification_id, user_id, title, body, data, created_at, read_at
    from inbox_items
    where user_id = ${userId}
    order by created_at desc, notification_id desc
    limit ${limit}`;
}
