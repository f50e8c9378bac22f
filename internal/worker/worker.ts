import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { WorkerMetrics } from '../metrics/workerMetrics.ts';
import type { Redis } from '../redis.ts';
import { claimNotifications, releaseClaim, type Claim, type ClaimedNotification } from '../repository/lifecycle.ts';
import { CompletionBatcher } from './completionBatcher.ts';
import { deliverClaimed, type AttemptDeps } from './deliveryAttempt.ts';

/** How long one BRPOP waits; also the longest a stopping worker waits for its pop to return. */
export const POP_TIMEOUT_SECONDS = 1;
/** Pause after Redis fails a pop, so an outage is not a busy loop. */
const POP_ERROR_PAUSE_MS = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface WorkerDeps extends AttemptDeps {
  /** A Redis connection for BRPOP only. */
  blocking: Redis;
  concurrency: number;
  logger: Logger;
  workerId?: string;
  /** Counts deliveries under way and their outcomes; absent, nothing is counted. */
  metrics?: Pick<WorkerMetrics, 'attemptRecorded' | 'deliveryStarted' | 'deliveryEnded'>;
}

interface HeldClaim {
  claim: Claim;
  abort: AbortController;
}

/** A name that tells operators which process holds a claim (`locked_by`, attempts' `worker_id`). */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * Takes notification ids from the queue and delivers up to `concurrency` of them at once. The ids are
 * popped and claimed in PostgreSQL in batches (one statement for all the free slots); an id whose
 * row is not claimable is a stale entry and is dropped. SENT outcomes are recorded in batches too.
 */
export class Worker {
  readonly id: string;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly held = new Map<string, HeldClaim>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  /** Settles when `stop()` is called, so a loop waiting for a free slot stops waiting. */
  private readonly stopRequested: Promise<void>;
  private requestStop: () => void = () => {};
  /** Shared by this worker's deliveries, so their SENT records commit together. */
  private readonly completions: CompletionBatcher;

  constructor(private readonly deps: WorkerDeps) {
    this.id = deps.workerId ?? newWorkerId();
    this.completions = new CompletionBatcher(deps.sql, { onInboxed: (items) => deps.inboxPublisher?.announce(items) });
    this.stopRequested = new Promise<void>((resolve) => {
      this.requestStop = resolve;
    });
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * Stops taking work, waits up to `graceMs` for deliveries under way, then hands back the claims
   * still held (PENDING again, due at once) and aborts their deliveries.
   */
  async stop(graceMs: number): Promise<{ released: number }> {
    this.stopping = true;
    this.requestStop();
    await this.loop;
    const settled = Promise.allSettled(this.inFlight);
    const timedOut = await Promise.race([settled.then(() => false), sleep(graceMs).then(() => true)]);
    let released = 0;
    if (timedOut) {
      for (const { claim, abort } of this.held.values()) {
        // Release before aborting, so the aborted attempt finds its claim gone and records nothing.
        if (await releaseClaim(this.deps.sql, claim).catch(() => false)) released++;
        abort.abort(new Error('worker is stopping'));
      }
      await settled;
    }
    return { released };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const free = this.deps.concurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race([...this.inFlight, this.stopRequested]);
        continue;
      }
      let ids: string[];
      try {
        // Many ids per pop, so a backlog costs one claim per batch, not per id; but at most half the
        // slots, so one batch is claimed while the previous one's SENT records are being written.
        const batch = Math.min(free, Math.ceil(this.deps.concurrency / 2));
        ids = await this.deps.queue.popMany(this.deps.blocking, POP_TIMEOUT_SECONDS, batch);
      } catch (err) {
        this.deps.logger.warn({ err }, 'queue pop failed; retrying');
        await sleep(POP_ERROR_PAUSE_MS);
        continue;
      }
      if (ids.length === 0) continue;
      if (this.stopping) {
        // Popped after the stop began: not this worker's to take any more.
        await this.deps.queue.giveBack(ids).catch((err: unknown) => {
          this.deps.logger.warn({ err, notificationIds: ids }, 'could not give back queue entries; the sweeper will queue them again');
        });
        break;
      }
      await this.claimAndDeliver(ids);
    }
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  /**
   * Claims the popped ids in one statement and starts a delivery for each row won. Awaited by the
   * loop, so the next pop counts these deliveries' slots as taken.
   */
  private async claimAndDeliver(popped: string[]): Promise<void> {
    const startedAt = Date.now();
    const ids = this.dropMalformed(popped);
    let rows: ClaimedNotification[];
    try {
      rows = await claimNotifications(this.deps.sql, ids, this.id, this.deps.leaseMs);
    } catch (err) {
      // The ids are gone from the queue, but the rows are still PENDING: the sweeper queues them again.
      this.deps.logger.warn({ err, notificationIds: ids }, 'claim failed; the sweeper will queue the notifications again');
      return;
    }
    if (rows.length < ids.length) {
      this.deps.logger.debug({ dropped: ids.length - rows.length }, 'stale queue entries dropped');
    }
    for (const row of rows) this.track(this.deliver(row, startedAt));
  }

  /** An entry that is not a UUID can name no notification, and would fail the whole batch's claim. */
  private dropMalformed(ids: string[]): string[] {
    const wellFormed = ids.filter((id) => UUID.test(id));
    if (wellFormed.length < ids.length) {
      this.deps.logger.warn({ entries: ids.filter((id) => !UUID.test(id)) }, 'malformed queue entries dropped');
    }
    return wellFormed;
  }

  private async deliver(row: ClaimedNotification, claimedAt: number): Promise<void> {
    const claim = { id: row.id, attempt: row.attempt, workerId: this.id };
    const logger = this.deps.logger.child({ notificationId: row.id, workerId: this.id, attempt: row.attempt, channel: row.type });
    const abort = new AbortController();
    this.held.set(row.id, { claim, abort });
    this.deps.metrics?.deliveryStarted();
    try {
      await deliverClaimed({ ...this.deps, completions: this.completions }, row, claim, abort.signal, logger, claimedAt);
    } finally {
      this.held.delete(row.id);
      this.deps.metrics?.deliveryEnded();
    }
  }
}
