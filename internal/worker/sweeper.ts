import type { Sql } from '../platform/database.ts';
import { sendToDeadLetters } from '../service/deadLetters.ts';
import type { Logger } from '../platform/logger.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { recordFailure } from '../repository/completions.ts';
import {
  deleteExpiredIdempotencyKeys,
  findExpiredClaims,
  findUndeadLettered,
  takeStaleQueued,
  takeUnqueued,
} from '../repository/maintenance.ts';
import { deleteExpiredNotifications } from '../repository/retention.ts';
import { Periodic } from './periodic.ts';
import { nextRetryDelayMs, type RetryPolicy } from './retryPolicy.ts';

/** Rows handled per statement, so one sweep never holds many locks or a long transaction. */
const BATCH_SIZE = 500;
/** Batches of due rows queued per sweep at most; the rest waits for the next sweep. */
const MAX_QUEUE_BATCHES_PER_SWEEP = 20;
/** Idempotency-Keys are kept at least this long (the contract says 24 h). */
const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * Expired notifications deleted per statement, and statements per sweep at most: small enough that
 * each delete (and its cascade to attempts) is over in milliseconds, and several sweepers a second
 * across the workers still clear millions of rows a day.
 */
const RETENTION_BATCH_SIZE = 1000;
const MAX_RETENTION_BATCHES_PER_SWEEP = 5;

export interface SweeperDeps {
  sql: Sql;
  queue: NotificationQueue;
  policy: RetryPolicy;
  leaseMs: number;
  intervalMs: number;
  /** Finished notifications older than this many days are deleted; 0 or unset keeps them all. */
  retentionDays?: number;
  logger: Logger;
}

export interface SweepResult {
  expired: number;
  queued: number;
  deadLettered: number;
  /** Finished notifications deleted for being older than the retention period. */
  deleted: number;
}

/**
 * Puts back what Redis or a dead worker lost, using PostgreSQL as the record. Every worker runs one;
 * their statements skip or fence each other's rows, so any number can sweep at once:
 * - a claim whose lease ran out counts as a failed attempt (the worker died or hung);
 * - a PENDING row that is due and not queued (a retry whose wait is over, a released claim) is
 *   queued; one queued more than a lease ago and never claimed is queued again once the queue is
 *   nearly empty (its entry was lost: a backlog is not a loss);
 * - a FAILED row missing from the dead-letter list is pushed there;
 * - expired Idempotency-Keys are forgotten;
 * - finished notifications older than `retentionDays` are deleted, a few small batches a sweep.
 */
export class Sweeper {
  private readonly periodic: Periodic;

  constructor(private readonly deps: SweeperDeps) {
    this.periodic = new Periodic(
      async () => {
        const result = await this.sweepOnce();
        if (result.expired + result.queued + result.deadLettered + result.deleted > 0) this.deps.logger.info(result, 'sweep');
      },
      deps.intervalMs,
      (err) => this.deps.logger.warn({ err }, 'sweep failed; trying again next interval'),
    );
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  async sweepOnce(): Promise<SweepResult> {
    const expired = await this.rescueExpiredClaims();
    const queued = await this.queueDueRows();
    const deadLettered = await this.pushMissingDeadLetters();
    await deleteExpiredIdempotencyKeys(this.deps.sql, IDEMPOTENCY_KEY_TTL_MS, BATCH_SIZE);
    const deleted = await this.deleteExpired();
    return { expired, queued, deadLettered, deleted };
  }

  /** Deletes batches of expired notifications until one comes back short or the sweep's share is done. */
  private async deleteExpired(): Promise<number> {
    const days = this.deps.retentionDays ?? 0;
    if (days <= 0) return 0;
    let total = 0;
    for (let batch = 0; batch < MAX_RETENTION_BATCHES_PER_SWEEP; batch++) {
      const deleted = await deleteExpiredNotifications(this.deps.sql, days, RETENTION_BATCH_SIZE);
      total += deleted;
      if (deleted < RETENTION_BATCH_SIZE) break;
    }
    return total;
  }

  private async rescueExpiredClaims(): Promise<number> {
    const expired = await findExpiredClaims(this.deps.sql, BATCH_SIZE);
    const failed: string[] = [];
    for (const row of expired) {
      const status = await recordFailure(
        this.deps.sql,
        { id: row.id, attempt: row.attempt, workerId: row.locked_by ?? 'unknown' },
        {
          reason: `lease expired: worker ${row.locked_by ?? 'unknown'} did not finish attempt ${row.attempt} in time`,
          permanent: false,
          maxRetries: this.deps.policy.maxRetries,
          retryDelayMs: nextRetryDelayMs(this.deps.policy, row.retry_count),
          outcome: 'LEASE_EXPIRED',
        },
      );
      if (status === 'FAILED') failed.push(row.id);
    }
    await sendToDeadLetters(this.deps.sql, this.deps.queue, failed);
    return expired.length;
  }

  private async queueDueRows(): Promise<number> {
    let total = await this.pushBatches(() => takeUnqueued(this.deps.sql, BATCH_SIZE));
    // Rows queued a lease ago and still unclaimed usually sit in a backlog rather than being lost.
    // Only a nearly empty queue says their entries are gone; re-pushing a backlog would multiply it.
    if ((await this.deps.queue.depth()) < BATCH_SIZE) {
      total += await this.pushBatches(() => takeStaleQueued(this.deps.sql, this.deps.leaseMs, BATCH_SIZE));
    }
    return total;
  }

  /** Takes and pushes batches until one comes back short. */
  private async pushBatches(take: () => Promise<string[]>): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < MAX_QUEUE_BATCHES_PER_SWEEP; batch++) {
      const ids = await take();
      // If this push fails the rows stay marked as queued; they are taken again a lease later.
      await this.deps.queue.push(ids);
      total += ids.length;
      if (ids.length < BATCH_SIZE) break;
    }
    return total;
  }

  private async pushMissingDeadLetters(): Promise<number> {
    const ids = await findUndeadLettered(this.deps.sql, this.deps.leaseMs, BATCH_SIZE);
    await sendToDeadLetters(this.deps.sql, this.deps.queue, ids);
    return ids.length;
  }
}
