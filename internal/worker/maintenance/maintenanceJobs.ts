import type { Config } from '../../platform/config.ts';
import type { Sql } from '../../platform/database.ts';
import type { NotificationQueue } from '../../queue/notificationQueue.ts';
import type { RetryPolicy } from '../retryPolicy.ts';
import { ClaimRescuer } from './claimRescuer.ts';
import { DeadLetterRelister } from './deadLetterRelister.ts';
import { DueRowScheduler } from './dueRowScheduler.ts';
import { IdempotencyKeyCleaner } from './idempotencyKeyCleaner.ts';
import type { MaintenanceJob } from './maintenanceJob.ts';
import { RetentionCleaner } from './retentionCleaner.ts';

export interface MaintenanceJobsDeps {
  sql: Sql;
  queue: NotificationQueue;
  policy: RetryPolicy;
  config: Pick<Config, 'LEASE_MS' | 'SWEEP_INTERVAL_MS' | 'RETENTION_DAYS'>;
}

/**
 * Every duty that puts back what Redis or a dead worker lost, using PostgreSQL as the record, and
 * cleans what outlived its use. Rescue and scheduling run every SWEEP_INTERVAL_MS, since retries
 * become due at that granularity; the others on intervals of their own.
 */
export function maintenanceJobs({ sql, queue, policy, config }: MaintenanceJobsDeps): MaintenanceJob[] {
  return [
    new ClaimRescuer({ sql, queue, policy }, config.SWEEP_INTERVAL_MS),
    new DueRowScheduler({ sql, queue, leaseMs: config.LEASE_MS, intervalMs: config.SWEEP_INTERVAL_MS }),
    new DeadLetterRelister({ sql, queue, leaseMs: config.LEASE_MS }),
    new IdempotencyKeyCleaner({ sql }),
    new RetentionCleaner({ sql, retentionDays: config.RETENTION_DAYS }),
  ];
}
