import type { NotificationRow } from '../../internal/domain/notification.ts';
import type { Sql } from '../../internal/platform/database.ts';

/**
 * Stores an inbox item for `row` as it stands, without its claim: the state an older version's
 * attempt could leave behind (an item stored, its notification not recorded SENT), and an aged
 * item beside an aged notification. Deliveries store theirs through the claim (see `claims.ts`).
 */
export async function insertInboxItem(sql: Sql, row: NotificationRow, seq = 1): Promise<void> {
  await sql`
    insert into inbox_items (notification_id, user_id, title, body, data, created_at, seq)
    values (${row.id}, ${row.user_id}, ${row.title}, ${row.body}, ${row.data === null ? null : sql.json(row.data as never)}, ${row.created_at}, ${seq})`;
  await sql`
    insert into inbox_counters as c (user_id, last_seq) values (${row.user_id}, ${seq})
    on conflict (user_id) do update set last_seq = greatest(c.last_seq, excluded.last_seq)`;
}
