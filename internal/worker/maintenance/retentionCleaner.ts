import type { Sql } from '../../platform/database.ts';
import { deleteExpiredNotifications } from '../../repository/retention.ts';
import { inBatches, type MaintenanceJob } from './maintenanceJob.ts';

/**
 * Expired notifications deleted per statement, and statements per run at most: small enough that
 * each delete (and its cascade to attempts) is over in milliseconds.
 */
const RETENTION_BATCH_SIZE = 1000;
const MAX_RETENTION_BATCHES_PER_RUN = 5;
/**
 * Up to 1,000 rows a second (86 million a day): rows age out at the rate they were sent a retention
 * period ago, so this keeps up with far more than one worker delivers, while an idle database sees
 * one indexed read every 5 s. A backlog (after lowering RETENTION_DAYS) drains at the same pace.
 */
export const RETENTION_INTERVAL_MS = 5000;

export interface RetentionCleanerDeps {
  sql: Sql;
  /** Finished notifications older than this many days are deleted; 0 or unset keeps them all. */
  retentionDays?: number;
}

/**
 * Deletes finished notifications (SENT, FAILED, SKIPPED) older than RETENTION_DAYS, oldest first,
 * a few small batches a run, so it never holds many locks or queues behind a delivery or a replay.
 */
export class RetentionCleaner implements MaintenanceJob {
  readonly name = 'retentionCleaner';
  readonly intervalMs = RETENTION_INTERVAL_MS;

  constructor(private readonly deps: RetentionCleanerDeps) {}

  async run(signal?: AbortSignal): Promise<{ deleted: number }> {
    const days = this.deps.retentionDays ?? 0;
    if (days <= 0) return { deleted: 0 };
    const take = () => deleteExpiredNotifications(this.deps.sql, days, RETENTION_BATCH_SIZE);
    return { deleted: await inBatches(take, RETENTION_BATCH_SIZE, MAX_RETENTION_BATCHES_PER_RUN, signal) };
  }
}
