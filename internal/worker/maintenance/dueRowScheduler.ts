import type { Sql } from '../../platform/database.ts';
import type { NotificationQueue } from '../../queue/notificationQueue.ts';
import { takeStaleQueued, takeUnqueued } from '../../repository/dueRows.ts';
import { inBatches, type MaintenanceJob } from './maintenanceJob.ts';

/** Ids marked and pushed per statement. */
const QUEUE_BATCH_SIZE = 500;
/** Batches queued per run at most; the rest waits for the next run. */
const MAX_QUEUE_BATCHES_PER_RUN = 20;

export interface DueRowSchedulerDeps {
  sql: Sql;
  queue: NotificationQueue;
  /** A row queued this long ago and still unclaimed may have lost its queue entry. */
  leaseMs: number;
  /** SWEEP_INTERVAL_MS: retries become due at this granularity, so it stays short (1 s). */
  intervalMs: number;
}

/**
 * Queues PENDING rows that are due and not queued (a retry whose wait is over, a released claim),
 * and, while the queue is nearly empty, rows queued more than a lease ago and never claimed (their
 * entry was lost with Redis, or the push after the insert failed).
 */
export class DueRowScheduler implements MaintenanceJob {
  readonly name = 'dueRowScheduler';
  readonly intervalMs: number;

  constructor(private readonly deps: DueRowSchedulerDeps) {
    this.intervalMs = deps.intervalMs;
  }

  async run(signal?: AbortSignal): Promise<{ queued: number }> {
    const { sql, leaseMs } = this.deps;
    let queued = await this.pushBatches(() => takeUnqueued(sql, QUEUE_BATCH_SIZE), signal);
    // Rows queued a lease ago and still unclaimed usually sit in a backlog rather than being lost.
    // Only a nearly empty queue says their entries are gone; re-pushing a backlog would multiply it.
    if ((await this.deps.queue.depth()) < QUEUE_BATCH_SIZE) {
      queued += await this.pushBatches(() => takeStaleQueued(sql, leaseMs, QUEUE_BATCH_SIZE), signal);
    }
    return { queued };
  }

  private pushBatches(take: () => Promise<string[]>, signal: AbortSignal | undefined): Promise<number> {
    const takeAndPush = async () => {
      const ids = await take();
      // If this push fails the rows stay marked as queued; they are taken again a lease later.
      await this.deps.queue.push(ids);
      return ids.length;
    };
    return inBatches(takeAndPush, QUEUE_BATCH_SIZE, MAX_QUEUE_BATCHES_PER_RUN, signal);
  }
}
