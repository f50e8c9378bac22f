import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { Redis } from '../redis.ts';
import { claimNotification, releaseClaim, type Claim } from '../repository/lifecycle.ts';
import { deliverClaimed, type AttemptDeps } from './deliveryAttempt.ts';

/** How long one BRPOP waits; also the longest a stopping worker waits for its pop to return. */
export const POP_TIMEOUT_SECONDS = 1;
/** Pause after Redis fails a pop, so an outage is not a busy loop. */
const POP_ERROR_PAUSE_MS = 1000;

export interface WorkerDeps extends AttemptDeps {
  /** A Redis connection for BRPOP only. */
  blocking: Redis;
  concurrency: number;
  logger: Logger;
  workerId?: string;
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
 * Takes notification ids from the queue and delivers up to `concurrency` of them at once. Each id is
 * claimed in PostgreSQL first; an id whose row is not claimable is a stale entry and is dropped.
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

  constructor(private readonly deps: WorkerDeps) {
    this.id = deps.workerId ?? newWorkerId();
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
      if (this.inFlight.size >= this.deps.concurrency) {
        await Promise.race([...this.inFlight, this.stopRequested]);
        continue;
      }
      let id: string | null;
      try {
        id = await this.deps.queue.pop(this.deps.blocking, POP_TIMEOUT_SECONDS);
      } catch (err) {
        this.deps.logger.warn({ err }, 'queue pop failed; retrying');
        await sleep(POP_ERROR_PAUSE_MS);
        continue;
      }
      if (id === null) continue;
      if (this.stopping) {
        // Popped after the stop began: not this worker's to take any more.
        await this.deps.queue.giveBack(id).catch((err: unknown) => {
          this.deps.logger.warn({ err, notificationId: id }, 'could not give back a queue entry; the sweeper will queue it again');
        });
        break;
      }
      this.track(this.handle(id));
    }
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private async handle(id: string): Promise<void> {
    const logger = this.deps.logger.child({ notificationId: id, workerId: this.id });
    const startedAt = Date.now();
    let row;
    try {
      row = await claimNotification(this.deps.sql, id, this.id, this.deps.leaseMs);
    } catch (err) {
      // The id is gone from the queue, but the row is still PENDING: the sweeper queues it again.
      logger.warn({ err }, 'claim failed; the sweeper will queue the notification again');
      return;
    }
    if (!row) {
      logger.debug('stale queue entry dropped');
      return;
    }
    const claim = { id, attempt: row.attempt, workerId: this.id };
    const abort = new AbortController();
    this.held.set(id, { claim, abort });
    try {
      await deliverClaimed(this.deps, row, claim, abort.signal, logger.child({ attempt: row.attempt, channel: row.type }), startedAt);
    } finally {
      this.held.delete(id);
    }
  }
}
