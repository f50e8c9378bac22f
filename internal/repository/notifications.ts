import type { Sql, Tx } from '../database.ts';
import { IdempotencyConflictError } from '../errors.ts';
import type { NotificationRow } from '../notification.ts';

/** What a caller supplies for a new row; PostgreSQL fills in status, timestamps and the rest. */
export type NewNotification = Pick<NotificationRow, 'id' | 'user_id' | 'type' | 'title' | 'body' | 'recipient' | 'data'>;

export interface IdempotencyClaim {
  key: string;
  /** Hash of the request; a repeat with another hash is a conflict. */
  requestHash: string;
}

export interface InsertResult {
  row: NotificationRow;
  /** False when an earlier request with the same Idempotency-Key created `row`. */
  created: boolean;
}

/**
 * Stores a new PENDING notification, marked as queued now (the caller pushes its id next; if that
 * push is lost, the sweeper queues it again after the lease time).
 *
 * With an idempotency key, the key is inserted first: a concurrent request with the same key waits
 * on the key's unique index until the first commits, then finds its notification. `beforeCommit`
 * runs last inside the transaction, so a caller that has stopped waiting can still roll back.
 */
export async function insertNotification(
  sql: Sql,
  notification: NewNotification,
  idempotency: IdempotencyClaim | undefined,
  beforeCommit: () => void,
): Promise<InsertResult> {
  return sql.begin(async (tx) => {
    if (idempotency) {
      const [claimed] = await tx`
        insert into idempotency_keys (key, request_hash, notification_id)
        values (${idempotency.key}, ${idempotency.requestHash}, ${notification.id})
        on conflict (key) do nothing
        returning key`;
      if (!claimed) {
        const existing = await findByIdempotencyKey(tx, idempotency.key);
        if (existing.requestHash !== idempotency.requestHash) {
          throw new IdempotencyConflictError(
            `Idempotency-Key "${idempotency.key}" was already used with a different request`,
          );
        }
        beforeCommit();
        return { row: existing.row, created: false };
      }
    }
    const [row] = await tx<NotificationRow[]>`
      insert into notifications (id, user_id, type, title, body, recipient, data, queued_at)
      values (
        ${notification.id}, ${notification.user_id}, ${notification.type}, ${notification.title},
        ${notification.body}, ${notification.recipient},
        ${notification.data === null ? null : tx.json(notification.data as never)},
        -- The push follows the commit; the transaction's start (now()) may be long before it.
        clock_timestamp()
      )
      returning *`;
    beforeCommit();
    return { row: row!, created: true };
  });
}

async function findByIdempotencyKey(
  sql: Tx,
  key: string,
): Promise<{ requestHash: string; row: NotificationRow }> {
  const [found] = await sql<(NotificationRow & { request_hash: string })[]>`
    select k.request_hash, n.*
    from idempotency_keys k
    join notifications n on n.id = k.notification_id
    where k.key = ${key}`;
  if (!found) throw new Error(`idempotency key "${key}" vanished while its conflict was being read`);
  const { request_hash, ...row } = found;
  return { requestHash: request_hash, row };
}

export async function findNotification(sql: Sql, id: string): Promise<NotificationRow | undefined> {
  const [row] = await sql<NotificationRow[]>`select * from notifications where id = ${id}`;
  return row;
}

/**
 * Stores many new PENDING notifications (no idempotency keys) in one transaction with one INSERT,
 * so concurrent requests share a round trip and a WAL flush instead of three round trips each.
 *
 * The rows travel as one jsonb parameter: one parameter to bind whatever the batch size (a row
 * per parameter set would hit the 65,535-parameter limit), and PostgreSQL unpacks it with the
 * column types given below.
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
    const rows = await tx<NotificationRow[]>`
      insert into notifications (id, user_id, type, title, body, recipient, data, queued_at)
      select x.id, x.user_id, x.type, x.title, x.body, x.recipient, x.data,
        -- The push follows the commit; the transaction's start (now()) may be long before it.
        clock_timestamp()
      from jsonb_to_recordset(${tx.json(notifications as never)})
        as x(id uuid, user_id text, type text, title text, body text, recipient text, data jsonb)
      returning *`;
    const abandoned = beforeCommit();
    if (abandoned.length === 0) return rows;
    await tx`delete from notifications where id = any(${abandoned}::uuid[])`;
    const dropped = new Set(abandoned);
    return rows.filter((row) => !dropped.has(row.id));
  });
}
