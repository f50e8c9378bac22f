import type { Sql } from './database.ts';
import type { Logger } from './logger.ts';
import type { NotificationRow } from './notification.ts';
import type { NotificationQueue } from './queue.ts';
import { insertNotificationBatch, type NewNotification } from './repository/notifications.ts';

/**
 * Batch writes at once, each on its own pool connection. One at a time would batch best, but a
 * write hanging on a half-open connection would then hold up every later one until TCP gives up.
 */
const MAX_WRITES_IN_FLIGHT = 4;
/** Most notifications stored by one INSERT; bounds the statement and the one transaction's size. */
const DEFAULT_MAX_BATCH = 500;

/**
 * Stores new notifications without an Idempotency-Key in batches, so a busy API pays one
 * transaction (BEGIN, INSERT, COMMIT: three round trips and one WAL flush) and one LPUSH for many
 * requests instead of for each. Group commit without a timer, as `CompletionBatcher` does: the
 * first create to arrive is written as soon as the current turn of the event loop ends (so the
 * requests parsed in that turn share it); while the writes under way are at their limit, arrivals
 * queue up and go together in the next one. An idle API waits no longer than before, a busy one batches by itself.
 *
 * Each request keeps its own deadline (see `runWithDeadline`): just before COMMIT every caller's
 * `beforeCommit` is run; those whose caller already answered 503 are deleted inside the
 * transaction, the others are now committing and wait for COMMIT's outcome. A failed batch
 * rejects every caller of that batch with the error, which `runWithDeadline` classifies.
 */
export class CreateBatcher {
  private waiting: Waiting[] = [];
  /** Batch writes under way; more than one, so a write stuck on a dead connection stalls no one else. */
  private writesInFlight = 0;
  private scheduled = false;

  constructor(
    private readonly sql: Sql,
    private readonly queue: NotificationQueue,
    private readonly logger: Logger,
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {}

  /** Resolves with the committed row once it is committed (and its id pushed, best effort). */
  create(notification: NewNotification, beforeCommit: () => void): Promise<NotificationRow> {
    return new Promise<NotificationRow>((resolve, reject) => {
      this.waiting.push({ notification, beforeCommit, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.writesInFlight >= MAX_WRITES_IN_FLIGHT || this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a timer: gathers what arrives in this turn of the event loop, adds no delay.
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private async write(): Promise<void> {
    const batch = this.waiting.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.writesInFlight++;
    const abandoned = new Map<Waiting, unknown>();
    try {
      const rows = await insertNotificationBatch(
        this.sql,
        batch.map((w) => w.notification),
        () => settle(batch, abandoned),
      );
      await this.push(rows.map((row) => row.id));
      answer(batch, abandoned, rows);
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.writesInFlight--;
      this.schedule();
    }
  }

  /** One LPUSH for the whole batch, after COMMIT; best effort, the sweeper queues what it lost. */
  private async push(ids: string[]): Promise<void> {
    await this.queue.push(ids).catch((err: unknown) => {
      // A line per notification, as before batching: operators trace a notification by its id.
      for (const notificationId of ids) {
        this.logger.warn({ err, notificationId }, 'queue push failed; the sweeper will queue it');
      }
    });
  }
}

/**
 * Runs each caller's `beforeCommit`: it throws for a caller that has stopped waiting (that one is
 * recorded in `abandoned` and its id returned, for deletion), and marks the others committing.
 */
function settle(batch: Waiting[], abandoned: Map<Waiting, unknown>): string[] {
  const ids: string[] = [];
  for (const w of batch) {
    try {
      w.beforeCommit();
    } catch (err) {
      abandoned.set(w, err);
      ids.push(w.notification.id);
    }
  }
  return ids;
}

/** Gives each committed caller its own row, and each abandoned one the error its deadline threw. */
function answer(batch: Waiting[], abandoned: Map<Waiting, unknown>, rows: NotificationRow[]): void {
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const w of batch) {
    const row = byId.get(w.notification.id);
    if (abandoned.has(w)) w.reject(abandoned.get(w));
    else if (row) w.resolve(row);
    else w.reject(new Error(`notification ${w.notification.id} missing from its batch's INSERT`));
  }
}

/** One batcher per pool and queue, so every request an API process serves shares it. */
const batchers = new WeakMap<Sql, WeakMap<NotificationQueue, CreateBatcher>>();

export function batcherFor(deps: { sql: Sql; queue: NotificationQueue; logger: Logger }): CreateBatcher {
  let byQueue = batchers.get(deps.sql);
  if (!byQueue) batchers.set(deps.sql, (byQueue = new WeakMap()));
  let batcher = byQueue.get(deps.queue);
  if (!batcher) byQueue.set(deps.queue, (batcher = new CreateBatcher(deps.sql, deps.queue, deps.logger)));
  return batcher;
}

interface Waiting {
  notification: NewNotification;
  beforeCommit: () => void;
  resolve: (row: NotificationRow) => void;
  reject: (err: unknown) => void;
}
