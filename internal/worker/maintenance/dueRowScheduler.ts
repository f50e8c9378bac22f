import { isUuid } from '../../domain/uuid.ts';
import type { Sql } from '../../platform/database.ts';
import type { NotificationQueue } from '../../queue/notificationQueue.ts';
import { queuePlace, takePassedOver, takeUnqueued } from '../../repository/dueRows.ts';
import { inBatches, type MaintenanceJob } from './maintenanceJob.ts';

/** Ids marked and pushed per statement. */
const QUEUE_BATCH_SIZE = 500;
/** Batches queued per run at most; the rest waits for the next run. */
const MAX_QUEUE_BATCHES_PER_RUN = 20;
/**
 * Oldest queue entries read to find where the queue is in line: a few, so one stale or duplicate
 * entry among them (whose row was queued again since) does not move the place on.
 */
const PLACE_SAMPLE = 20;

export interface DueRowSchedulerDeps {
  sql: Sql;
  queue: NotificationQueue;
  /**
   * How far behind the queue's place in line a row's `queued_at` must be before its entry counts as
   * lost: room for pushes that follow their `queued_at` late and claims under way.
   */
  leaseMs: number;
  /** SWEEP_INTERVAL_MS: retries become due at this granularity, so it stays short (1 s). */
  intervalMs: number;
}

/**
 * Queues PENDING rows that are due and not queued (a retry whose wait is over, a released claim),
 * and puts back rows the queue has passed by: the queue is first in, first out, so a row queued
 * more than a lease before the oldest entries still in it (or a lease ago, when it is empty) and
 * never claimed has lost its entry (Redis flushed or restarted, a pop whose reply never came, a
 * push after the insert that failed). Those go back at the front of the line, where the next pops
 * take them, however long the queue is: a lost entry waits at most a lease and a sweep longer than
 * its turn, and the rows still in line are never queued twice.
 */
export class DueRowScheduler implements MaintenanceJob {
  readonly name = 'dueRowScheduler';
  readonly intervalMs: number;

  constructor(private readonly deps: DueRowSchedulerDeps) {
    this.intervalMs = deps.intervalMs;
  }

  async run(signal?: AbortSignal): Promise<{ queued: number }> {
    const { sql, queue } = this.deps;
    const take = async () => {
      const ids = await takeUnqueued(sql, QUEUE_BATCH_SIZE);
      // If this push fails the rows stay marked as queued; the queue passes them by, and they are put back.
      await queue.push(ids);
      return ids.length;
    };
    const queued = await inBatches(take, QUEUE_BATCH_SIZE, MAX_QUEUE_BATCHES_PER_RUN, signal);
    return { queued: queued + (await this.putBackPassedOver(signal)) };
  }

  /**
   * Takes the rows the queue passed by in batches, then puts them all back at the front in one
   * push, the earliest queued nearest the tail: pushed batch by batch, each later batch would go
   * ahead of the earlier ones.
   */
  private async putBackPassedOver(signal: AbortSignal | undefined): Promise<number> {
    const { sql, queue, leaseMs } = this.deps;
    const place = await queuePlace(sql, (await queue.oldest(PLACE_SAMPLE)).filter(isUuid));
    if (!place) return 0;
    const taken: string[] = [];
    const take = async () => {
      const ids = await takePassedOver(sql, place, leaseMs, QUEUE_BATCH_SIZE);
      taken.push(...ids);
      return ids.length;
    };
    try {
      await inBatches(take, QUEUE_BATCH_SIZE, MAX_QUEUE_BATCHES_PER_RUN, signal);
    } finally {
      // What was taken goes back even if a later batch failed; should this push fail, the rows stay
      // marked at `place`, and are put back once the queue has passed that by a lease.
      await queue.giveBack(taken);
    }
    return taken.length;
  }
}
