import type { Sql, Tx } from '../platform/database.ts';
import { IdempotencyConflictError } from '../domain/errors.ts';
import type { NotificationRow } from '../domain/notification.ts';
import { claimIdempotencyKey, type IdempotencyClaim } from './idempotencyKeys.ts';

/** What a caller supplies for a new row; PostgreSQL fills in status, timestamps and the rest. */
export type NewNotification = Pick<
  NotificationRow,
  'id' | 'user_id' | 'type' | 'title' | 'body' | 'recipient' | 'html' | 'data' | 'critical'
> & { fanout_id?: string };

export interface InsertResult {
  row: NotificationRow;
  /** False when an earlier request with the same Idempotency-Key created `row`. */
  created: boolean;
}

/**
 * Stores a new PENDING notification, marked as queued now (the caller pushes its id next; if that
 * push is lost, maintenance queues it again after the lease time).
 *
 * With an idempotency key, the key is claimed first (see `claimIdempotencyKey`): a repeat finds
 * the notification the first request created. `beforeCommit` runs last inside the transaction, so
 * a caller that has stopped waiting can still roll back.
 */
export async function insertNotification(
  sql: Sql,
  notification: NewNotification,
  idempotency: IdempotencyClaim | undefined,
  beforeCommit: () => void,
): Promise<InsertResult> {
  return sql.begin(async (tx) => {
    if (idempotency) {
      const earlier = await claimIdempotencyKey(tx, idempotency, { notificationId: notification.id });
      if (earlier) {
        const row = earlier.notificationId ? await findNotification(tx, earlier.notificationId) : undefined;
        if (!row) throw new IdempotencyConflictError(`Idempotency-Key "${idempotency.key}" was already used with a different request`);
        beforeCommit();
        return { row, created: false };
      }
    }
    const [row] = await insertRows(tx, [notification]);
    beforeCommit();
    return { row: row!, created: true };
  });
}

/**
 * Inserts PENDING rows, marked as queued now. The rows travel as one jsonb parameter: one
 * parameter to bind whatever the batch size (a row per parameter set would hit the
 * 65,535-parameter limit), and PostgreSQL unpacks it with the column types given below.
 */
export async function insertRows(tx: Tx, notifications: NewNotification[]): Promise<NotificationRow[]> {
  return tx<NotificationRow[]>`
    insert into notifications (id, user_id, type, title, body, recipient, html, data, critical, fanout_id, queued_at)
    select x.id, x.user_id, x.type, x.title, x.body, x.recipient, x.html, x.data, coalesce(x.critical, false),
      x.fanout_id,
      -- The push follows the commit; the transaction's start (now()) may be long before it.
      clock_timestamp()
    from jsonb_to_recordset(${tx.json(notifications as never)})
      as x(id uuid, user_id text, type text, title text, body text, recipient text, html text, data jsonb,
           critical boolean, fanout_id uuid)
    returning *`;
}

export async function findNotification(sql: Sql | Tx, id: string): Promise<NotificationRow | undefined> {
  const [row] = await sql<NotificationRow[]>`select * from notifications where id = ${id}`;
  return row;
}

/**
 * Stores many new PENDING notifications (no idempotency keys) in one transaction with one INSERT,
 * so concurrent requests share a round trip and a WAL flush instead of three round trips each.
 *
 * `beforeCommit` runs last inside the transaction, like `insertNotification`'s, and returns the
 * ids whose callers have stopped waiting: they are deleted before COMMIT, so a refused request's
 * row never lands. Resolves with the rows that commit, in no particular order.
 */
export async function insertNotificationBatch(
  sql: Sql,
  notifications: NewNotification[],
  beforeCommit: () => string[],
): Promise<NotificationRow[]> {
  return sql.begin(async (tx) => {
    const rows = await insertRows(tx, notifications);
    const abandoned = beforeCommit();
    if (abandoned.length === 0) return rows;
    await tx`delete from notifications where id = any(${abandoned}::uuid[])`;
    const dropped = new Set(abandoned);
    return rows.filter((row) => !dropped.has(row.id));
  });
}
