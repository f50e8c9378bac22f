import type { Sql } from '../platform/database.ts';
import { GroupCommit, type ItemOutcome } from '../platform/groupCommit.ts';
import type { Logger } from '../platform/logger.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { insertNotificationBatch, type NewNotification } from '../repository/notifications.ts';

/** Most notifications stored by one INSERT; bounds the statement and the one transaction's size. */
const DEFAULT_MAX_BATCH = 500;

interface PendingCreate {
  notification: NewNotification;
  beforeCommit: () => void;
}

/**
 * Stores new notifications without an Idempotency-Key in batches (see `GroupCommit`), so a busy
 * API pays one transaction (BEGIN, INSERT, COMMIT: three round trips and one WAL flush) and one
 * LPUSH for many requests instead of for each.
 *
 * Each request keeps its own deadline (see `runWithDeadline`): just before COMMIT every caller's
 * `beforeCommit` is run; those whose caller already answered 503 are deleted inside the
 * transaction, the others are now committing and wait for COMMIT's outcome. A failed batch
 * rejects every caller of that batch with the error, which `runWithDeadline` classifies.
 */
export class NotificationInsertBatcher {
  private readonly batches: GroupCommit<PendingCreate, NotificationRow>;

  constructor(
    private readonly sql: Sql,
    private readonly queue: NotificationQueue,
    private readonly logger: Logger,
    maxBatch = DEFAULT_MAX_BATCH,
  ) {
    this.batches = new GroupCommit((creates) => this.write(creates), maxBatch);
  }

  /** Resolves with the committed row once it is committed (and its id pushed, best effort). */
  create(notification: NewNotification, beforeCommit: () => void): Promise<NotificationRow> {
    return this.batches.submit({ notification, beforeCommit });
  }

  private async write(creates: PendingCreate[]): Promise<ItemOutcome<NotificationRow>[]> {
    const abandoned = new Map<PendingCreate, unknown>();
    const rows = await insertNotificationBatch(
      this.sql,
      creates.map((c) => c.notification),
      () => settle(creates, abandoned),
    );
    await this.push(rows.map((row) => row.id));
    return answer(creates, abandoned, rows);
  }

  /** One LPUSH for the whole batch, after COMMIT; best effort, maintenance queues what it lost. */
  private async push(ids: string[]): Promise<void> {
    await this.queue.push(ids).catch((err: unknown) => {
      // A line per notification, as before batching: operators trace a notification by its id.
      for (const notificationId of ids) {
        this.logger.warn({ err, notificationId }, 'queue push failed; maintenance will queue it');
      }
    });
  }
}

/**
 * Runs each caller's `beforeCommit`: it throws for a caller that has stopped waiting (that one is
 * recorded in `abandoned` and its id returned, for deletion), and marks the others committing.
 */
function settle(creates: PendingCreate[], abandoned: Map<PendingCreate, unknown>): string[] {
  const ids: string[] = [];
  for (const c of creates) {
    try {
      c.beforeCommit();
    } catch (err) {
      abandoned.set(c, err);
      ids.push(c.notification.id);
    }
  }
  return ids;
}

/** Each committed caller's own row, and each abandoned one the error its deadline threw. */
function answer(
  creates: PendingCreate[],
  abandoned: Map<PendingCreate, unknown>,
  rows: NotificationRow[],
): ItemOutcome<NotificationRow>[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return creates.map((c) => {
    const row = byId.get(c.notification.id);
    if (abandoned.has(c)) return { ok: false, error: abandoned.get(c) };
    if (row) return { ok: true, value: row };
    return { ok: false, error: new Error(`notification ${c.notification.id} missing from its batch's INSERT`) };
  });
}

/** One batcher per pool and queue, so every request an API process serves shares it. */
const batchers = new WeakMap<Sql, WeakMap<NotificationQueue, NotificationInsertBatcher>>();

export function batcherFor(deps: { sql: Sql; queue: NotificationQueue; logger: Logger }): NotificationInsertBatcher {
  let byQueue = batchers.get(deps.sql);
  if (!byQueue) batchers.set(deps.sql, (byQueue = new WeakMap()));
  let batcher = byQueue.get(deps.queue);
  if (!batcher) byQueue.set(deps.queue, (batcher = new NotificationInsertBatcher(deps.sql, deps.queue, deps.logger)));
  return batcher;
}
