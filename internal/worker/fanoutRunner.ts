import type { Sql } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { advanceTopicFanout, claimRunningFanout, releaseFanout, type FanoutClaim } from '../repository/fanouts.ts';
import { renewFanoutLease } from '../repository/leaseRenewals.ts';
import { Periodic } from './periodic.ts';

/**
 * Subscribers turned into notifications per transaction: small enough that no statement holds
 * many locks or runs long, large enough that a 100,000-subscriber topic takes a hundred of them.
 */
export const FANOUT_BATCH_SIZE = 1000;

export interface FanoutRunnerDeps {
  sql: Sql;
  /** The worker's client for lease renewals (see `WorkerDeps.renewals`). */
  renewals: Sql;
  queue: NotificationQueue;
  workerId: string;
  leaseMs: number;
  intervalMs: number;
  logger: Logger;
  batchSize?: number;
}

/**
 * Creates the notifications of topic fan-outs (`POST /notifications` with `topic`). Every worker
 * runs one; each takes a RUNNING fan-out with a lease, creates its notifications batch by batch
 * (queuing each batch with one LPUSH) and lets go when it is DONE. A worker that dies mid-way
 * leaves the cursor at its last committed batch, and the next one carries on from there.
 *
 * Each batch extends the hold's lease, and while a fan-out is held its lease is also renewed every
 * third of a lease, as the worker's claims are: a batch that waits long for a connection or for a
 * busy PostgreSQL does not lose the fan-out to another worker while this one lives.
 */
export class FanoutRunner {
  private readonly periodic: Periodic;

  constructor(private readonly deps: FanoutRunnerDeps) {
    this.periodic = new Periodic(
      () => this.runOnce().then(() => {}),
      deps.intervalMs,
      (err) => deps.logger.warn({ err }, 'fan-out failed; trying again next interval'),
    );
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Works through RUNNING fan-outs until none is free; returns how many notifications it created. */
  async runOnce(): Promise<number> {
    let created = 0;
    while (!this.periodic.isStopped) {
      const claim = await claimRunningFanout(this.deps.sql, this.deps.workerId, this.deps.leaseMs);
      if (!claim) break;
      created += await this.advance(claim);
    }
    return created;
  }

  private async advance(claim: FanoutClaim): Promise<number> {
    const logger = this.deps.logger.child({ fanoutId: claim.id });
    let lost = false;
    const renewal = new Periodic(
      async () => {
        if ((await renewFanoutLease(this.deps.renewals, this.deps.workerId, claim, this.deps.leaseMs)) === 'lost') lost = true;
      },
      this.deps.leaseMs / 3,
      (err) => logger.warn({ err }, 'fan-out lease renewal failed; trying again'),
    );
    renewal.start(this.deps.leaseMs / 3);
    try {
      return await this.advanceHeld(claim, logger, () => lost);
    } finally {
      await renewal.stop();
    }
  }

  private async advanceHeld(claim: FanoutClaim, logger: Logger, lost: () => boolean): Promise<number> {
    let created = 0;
    for (;;) {
      if (this.periodic.isStopped) {
        // Between batches: another worker goes on from the cursor.
        await releaseFanout(this.deps.sql, claim);
        break;
      }
      const progress = await advanceTopicFanout(this.deps.sql, claim, this.deps.batchSize ?? FANOUT_BATCH_SIZE, this.deps.leaseMs);
      created += progress.created;
      // The rows are marked queued; if this push is lost, maintenance queues them again.
      if (progress.queued.length > 0) {
        await this.deps.queue.push(progress.queued).catch((err: unknown) => {
          logger.warn({ err, notifications: progress.queued.length }, 'queue push failed; maintenance will queue them');
        });
      }
      if (progress.status === undefined || lost()) {
        logger.warn('fan-out taken over by another worker');
        break;
      }
      if (progress.status === 'DONE') {
        logger.info({ created }, 'fan-out done');
        break;
      }
    }
    return created;
  }
}
