import type { Sql } from '../../platform/database.ts';
import type { NotificationQueue } from '../../queue/notificationQueue.ts';
import { findUndeadLettered } from '../../repository/deadLetters.ts';
import { sendToDeadLetters } from '../../service/deadLetters.ts';
import type { MaintenanceJob } from './maintenanceJob.ts';

/**
 * A row is missing from the dead-letter list only after a Redis outage or a worker's death, and
 * the list is read by people and scripts, not by the delivery path: a few seconds' lag is fine.
 */
export const DEAD_LETTER_RELIST_INTERVAL_MS = 5000;
/** FAILED rows pushed per run. */
const RELIST_BATCH_SIZE = 500;

export interface DeadLetterRelisterDeps {
  sql: Sql;
  queue: NotificationQueue;
  /** Grace before a FAILED row counts as missing, so the failing worker's own push is not raced. */
  leaseMs: number;
}

/**
 * Pushes FAILED rows missing from the dead-letter list (Redis was down when they failed, or their
 * worker died in between) and marks them; a repeat push is harmless, replay removes every copy.
 */
export class DeadLetterRelister implements MaintenanceJob {
  readonly name = 'deadLetterRelister';
  readonly intervalMs = DEAD_LETTER_RELIST_INTERVAL_MS;

  constructor(private readonly deps: DeadLetterRelisterDeps) {}

  async run(): Promise<{ deadLettered: number }> {
    const ids = await findUndeadLettered(this.deps.sql, this.deps.leaseMs, RELIST_BATCH_SIZE);
    await sendToDeadLetters(this.deps.sql, this.deps.queue, ids);
    return { deadLettered: ids.length };
  }
}
