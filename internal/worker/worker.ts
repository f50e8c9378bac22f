import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../platform/logger.ts';
import type { WorkerMetrics } from '../metrics/workerMetrics.ts';
import type { Redis } from '../platform/redis.ts';
import { isPostgresUnavailable, isTransactionConflict } from '../domain/dependencyErrors.ts';
import { isUuid } from '../domain/uuid.ts';
import { CHANNELS, type Channel } from '../domain/notification.ts';
import { claimBatch, type BatchClaim, type InboxDelivery } from '../repository/claims.ts';
import { releaseClaim, type ClaimedNotification } from '../repository/claims.ts';
import type { InboxPublisher } from '../queue/inboxPublisher.ts';
import type { Sql } from '../platform/database.ts';
import { ClaimHandedBack } from './claimHandedBack.ts';
import { CompletionBatcher } from './completionBatcher.ts';
import { deliverClaimed, type AttemptDeps } from './deliveryAttempt.ts';
import { LeaseKeeper } from './leaseKeeper.ts';

/** How long one BRPOP waits; also the longest a stopping worker waits for its pop to return. */
export const POP_TIMEOUT_SECONDS = 1;
/** Pause after Redis fails a pop or PostgreSQL a claim, so an outage is not a busy loop. */
const POP_ERROR_PAUSE_MS = 1000;

export interface WorkerDeps extends Omit<AttemptDeps, 'completions'> {
  /** Announces the inbox items the claims stored to live clients. */
  inboxPublisher?: Pick<InboxPublisher, 'announce'>;
  /** A Redis connection for BRPOP only. */
  blocking: Redis;
  /**
   * A PostgreSQL client for lease renewals only: in production one connection of its own
   * (`connectDatabase(url, { max: 1 })`), so a renewal never waits for a pool connection behind the
   * deliveries and recordings it keeps leased.
   */
  renewals: Sql;
  concurrency: number;
  logger: Logger;
  workerId?: string;
  /** Counts deliveries under way and their outcomes; absent, nothing is counted. */
  metrics?: Pick<WorkerMetrics, 'attemptRecorded' | 'deliveryStarted' | 'deliveryEnded'>;
}

/** A promise and the function that settles it (Node 20 has no Promise.withResolvers). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A name that tells operators which process holds a claim (`locked_by`, attempts' `worker_id`). */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * How many batches may be between their pop and their claim's answer at once. One leaves PostgreSQL
 * idle while the worker pops and handles an answer; two keep it busy. More made each statement
 * slower in the drain benchmark (the claims contend for the same pages) and bought nothing.
 */
const CLAIMS_IN_FLIGHT = 2;

/**
 * Takes notification ids from the queue and delivers up to `concurrency` of them at once. The ids are
 * popped and claimed in PostgreSQL in batches (one statement a batch, a few batches under way at
 * once); an id whose row is not claimable is a stale entry and is dropped. A notification
 * delivered by a row in PostgreSQL (IN_APP) is delivered and recorded SENT by the claim itself;
 * the others' SENT records are written in batches too.
 */
export class Worker {
  readonly id: string;
  private readonly inFlight = new Set<Promise<void>>();
  /** The claims this worker holds, renewed while it holds them. */
  private readonly leases: LeaseKeeper;
  /** Slots taken: ids whose claim is under way, and deliveries under way. At most `concurrency`. */
  private busy = 0;
  private claimsInFlight = 0;
  private stopping = false;
  /** Set when a stop's grace period ran out: claims that end now hand their rows back. */
  private handingBack = false;
  private releasedAtStop = 0;
  /** No pops before this time (ms since epoch): a claim just failed. */
  private pauseUntil = 0;
  private loop: Promise<void> | undefined;
  /**
   * Settles (and is replaced) whenever a slot or a claim finishes, or a stop begins, for the loop
   * waiting on one. A fresh promise each time: racing a promise that settles only at stop would add
   * a reaction to it on every wait, which the worker would hold until it stops (a leak per batch).
   */
  private freed = signal();
  /** Shared by this worker's deliveries, so their SENT records commit together. */
  private readonly completions: CompletionBatcher;
  /** Channels whose delivery is a row in PostgreSQL, done by the claim's own statement. */
  private readonly inboxChannels: Channel[];

  constructor(private readonly deps: WorkerDeps) {
    this.id = deps.workerId ?? newWorkerId();
    this.completions = new CompletionBatcher(deps.sql);
    this.leases = new LeaseKeeper({ sql: deps.renewals, workerId: this.id, leaseMs: deps.leaseMs, logger: deps.logger });
    this.inboxChannels = CHANNELS.filter((channel) => deps.channels[channel]?.deliveredWhenRecorded === 'inbox');
  }

  start(): void {
    this.leases.start();
    this.loop = this.run();
  }

  /**
   * Stops taking work, waits up to `graceMs` for deliveries under way, then hands back the claims
   * still held (PENDING again, due at once) and aborts their deliveries.
   */
  async stop(graceMs: number): Promise<{ released: number }> {
    this.stopping = true;
    this.wake();
    await this.loop;
    const timedOut = await Promise.race([this.settled().then(() => false), sleep(graceMs).then(() => true)]);
    let released = 0;
    if (timedOut) {
      // A claim still under way hands back what it wins instead of delivering it (see claimAndDeliver).
      this.handingBack = true;
      for (const { claim, abort } of this.leases.claims()) {
        // Release before aborting, so the aborted attempt finds its claim gone and records nothing.
        const handedBack = await releaseClaim(this.deps.sql, claim).catch(() => false);
        if (handedBack) released++;
        abort.abort(handedBack ? new ClaimHandedBack() : new Error('worker is stopping'));
      }
      await this.settled();
    }
    await this.leases.stop();
    return { released: released + this.releasedAtStop };
  }

  /** Settles once nothing is under way, including deliveries started by claims that end meanwhile. */
  private async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async run(): Promise<void> {
    // Batches of at most a share of the slots, so several can be under way at once.
    const batchMax = Math.ceil(this.deps.concurrency / CLAIMS_IN_FLIGHT);
    while (!this.stopping) {
      const pause = this.pauseUntil - Date.now();
      if (pause > 0) {
        await Promise.race([sleep(pause), this.freed.promise]);
        continue;
      }
      const free = this.deps.concurrency - this.busy;
      if (free <= 0 || this.claimsInFlight >= CLAIMS_IN_FLIGHT) {
        await this.freed.promise;
        continue;
      }
      let ids: string[];
      try {
        ids = await this.deps.queue.popMany(this.deps.blocking, POP_TIMEOUT_SECONDS, Math.min(free, batchMax));
      } catch (err) {
        this.deps.logger.warn({ err }, 'queue pop failed; retrying');
        await sleep(POP_ERROR_PAUSE_MS);
        continue;
      }
      if (ids.length === 0) continue;
      if (this.stopping) {
        // Popped after the stop began: not this worker's to take any more.
        await this.deps.queue.giveBack(ids).catch((err: unknown) => {
          this.deps.logger.warn({ err, notificationIds: ids }, 'could not give back queue entries; maintenance will queue them again');
        });
        break;
      }
      this.take(ids.length);
      this.claimsInFlight++;
      this.track(this.claimAndDeliver(ids).finally(() => this.claimEnded()));
    }
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task
      .catch((err: unknown) => this.deps.logger.error({ err }, 'worker task failed'))
      .finally(() => this.inFlight.delete(task));
  }

  private take(slots: number): void {
    this.busy += slots;
  }

  private release(slots: number): void {
    if (slots <= 0) return;
    this.busy -= slots;
    this.wake();
  }

  private claimEnded(): void {
    this.claimsInFlight--;
    this.wake();
  }

  private wake(): void {
    const freed = this.freed;
    this.freed = signal();
    freed.resolve();
  }

  /**
   * Claims the popped ids in one statement, which also delivers those bound for an inbox, and
   * starts a delivery for each other row won. Each id's slot is given back when its work is done.
   */
  private async claimAndDeliver(popped: string[]): Promise<void> {
    const startedAt = Date.now();
    const ids = this.dropMalformed(popped);
    let batch: BatchClaim;
    try {
      batch = await claimBatch(this.deps.sql, ids, this.id, this.deps.leaseMs, this.inboxChannels);
    } catch (err) {
      this.release(popped.length);
      await this.claimFailed(ids, err);
      return;
    }
    let delivering = 0;
    try {
      const stale = ids.length - batch.claimed.length - batch.inboxed.length;
      if (stale > 0) this.deps.logger.debug({ dropped: stale }, 'stale queue entries dropped');
      this.recordInboxed(batch.inboxed, startedAt);
      if (this.handingBack) {
        await this.handBack(batch.claimed);
        return;
      }
      for (const row of batch.claimed) {
        delivering++;
        this.track(this.deliver(row, startedAt).finally(() => this.release(1)));
      }
    } catch (err) {
      // Only bookkeeping can throw here (metrics, logs). A claimed row whose delivery did not start
      // keeps its lease, and maintenance hands it to another attempt when the lease runs out.
      this.deps.logger.error({ err }, 'could not finish handling a claimed batch');
    } finally {
      // Every slot but those of the deliveries started, which give theirs back as they end.
      this.release(popped.length - delivering);
    }
  }

  /**
   * After a failed claim the rows are still PENDING (or, if it committed unseen, leased to this
   * worker until the lease runs out). When PostgreSQL was unreachable or the claim lost a deadlock,
   * the ids go back on the queue and the loop pauses, so an outage is not a busy loop of pops; were
   * that lost too, maintenance queues the rows again. Any other error would fail the same way
   * again: the ids are left to maintenance rather than handed round the workers.
   */
  private async claimFailed(ids: string[], err: unknown): Promise<void> {
    this.pauseUntil = Date.now() + POP_ERROR_PAUSE_MS;
    if (!isPostgresUnavailable(err) && !isTransactionConflict(err)) {
      this.deps.logger.error({ err, notificationIds: ids }, 'claim failed; maintenance will queue the notifications again');
      return;
    }
    this.deps.logger.warn({ err, notificationIds: ids }, 'claim failed; the notifications go back on the queue');
    await this.deps.queue.giveBack(ids).catch(() => {});
  }

  /** Releases rows claimed after a stop's grace period ran out, for another worker to deliver. */
  private async handBack(rows: ClaimedNotification[]): Promise<void> {
    for (const row of rows) {
      const claim = { id: row.id, attempt: row.attempt, workerId: this.id };
      if (await releaseClaim(this.deps.sql, claim).catch(() => false)) this.releasedAtStop++;
    }
  }

  /**
   * Counts, logs and announces what a claim delivered to inboxes. One log line for the batch, naming
   * every id: a line per notification cost this path a tenth of its CPU.
   */
  private recordInboxed(inboxed: InboxDelivery[], startedAt: number): void {
    if (inboxed.length === 0) return;
    for (const { row } of inboxed) this.deps.metrics?.attemptRecorded(row, 'SENT', startedAt);
    this.deps.logger.info(
      { notificationIds: inboxed.map(({ row }) => row.id), workerId: this.id, ms: Date.now() - startedAt },
      'notifications sent to inboxes',
    );
    const items = inboxed.flatMap(({ item }) => (item ? [item] : []));
    if (items.length > 0) this.deps.inboxPublisher?.announce(items);
  }

  /** An entry that is not a UUID can name no notification, and would fail the whole batch's claim. */
  private dropMalformed(ids: string[]): string[] {
    const wellFormed = ids.filter((id) => isUuid(id));
    if (wellFormed.length < ids.length) {
      this.deps.logger.warn({ entries: ids.filter((id) => !isUuid(id)) }, 'malformed queue entries dropped');
    }
    return wellFormed;
  }

  /** `claimSentAt`: when the claim statement was sent, from which its lease counts. */
  private async deliver(row: ClaimedNotification, claimSentAt: number): Promise<void> {
    const claim = { id: row.id, attempt: row.attempt, workerId: this.id };
    const logger = this.deps.logger.child({ notificationId: row.id, workerId: this.id, attempt: row.attempt, channel: row.type });
    const held = this.leases.hold(claim, claimSentAt);
    this.deps.metrics?.deliveryStarted();
    try {
      await deliverClaimed({ ...this.deps, completions: this.completions }, row, claim, held.abort.signal, logger, () => held.leaseUntil);
    } finally {
      this.leases.release(held);
      this.deps.metrics?.deliveryEnded();
    }
  }
}
