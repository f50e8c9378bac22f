import type { Sql } from '../../platform/database.ts';
import type { NotificationQueue } from '../../queue/notificationQueue.ts';
import { recordFailure } from '../../repository/completions.ts';
import { findExpiredClaims, type ExpiredClaim } from '../../repository/expiredClaims.ts';
import { sendToDeadLetters } from '../../service/deadLetters.ts';
import { nextRetryDelayMs, type RetryPolicy } from '../retryPolicy.ts';
import type { MaintenanceJob } from './maintenanceJob.ts';

/** Expired claims handled per run: each is one fenced update, so a run stays short. */
const RESCUE_BATCH_SIZE = 500;

export interface ClaimRescuerDeps {
  sql: Sql;
  queue: NotificationQueue;
  policy: RetryPolicy;
}

/**
 * Counts a claim whose lease ran out (its worker died or hung) as a failed attempt
 * (`LEASE_EXPIRED`): retried after the backoff, or FAILED and dead-lettered when it was the last,
 * so a notification that keeps killing its workers cannot loop for ever. `recordFailure` is fenced
 * on the claim's attempt, so a second rescuer or the late worker cannot record it twice.
 */
export class ClaimRescuer implements MaintenanceJob {
  readonly name = 'claimRescuer';

  /**
   * `intervalMs` is SWEEP_INTERVAL_MS: a lease is tens of seconds, so a second's wait adds little
   * to how late a dead worker's notification is retried, and an idle database sees one cheap
   * indexed read a second.
   */
  constructor(
    private readonly deps: ClaimRescuerDeps,
    readonly intervalMs: number,
  ) {}

  async run(): Promise<{ rescued: number }> {
    const expired = await findExpiredClaims(this.deps.sql, RESCUE_BATCH_SIZE);
    const failed: string[] = [];
    for (const claim of expired) {
      if ((await this.recordExpiry(claim)) === 'FAILED') failed.push(claim.id);
    }
    await sendToDeadLetters(this.deps.sql, this.deps.queue, failed);
    return { rescued: expired.length };
  }

  private recordExpiry(claim: ExpiredClaim) {
    const worker = claim.locked_by ?? 'unknown';
    return recordFailure(
      this.deps.sql,
      { id: claim.id, attempt: claim.attempt, workerId: worker },
      {
        reason: `lease expired: worker ${worker} did not finish attempt ${claim.attempt} in time`,
        permanent: false,
        maxRetries: this.deps.policy.maxRetries,
        retryDelayMs: nextRetryDelayMs(this.deps.policy, claim.retry_count),
        outcome: 'LEASE_EXPIRED',
      },
    );
  }
}
