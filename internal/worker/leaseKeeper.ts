import type { Sql } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import { renewClaims } from '../repository/leaseRenewals.ts';
import { claimKey, type Claim } from '../repository/claims.ts';
import { Periodic } from './periodic.ts';

/** Renewals per lease: two may fail (or be late by the jitter) before a live worker's lease runs out. */
const RENEWALS_PER_LEASE = 3;

/** A claim this worker holds, from its claim until its outcome is recorded or it is released. */
export interface HeldClaim {
  claim: Claim;
  /** Aborts the claim's delivery: the claim was lost, or its lease ran out unrenewed. */
  abort: AbortController;
  /**
   * When the lease runs out as far as this worker knows (ms since epoch): a lease's length after the
   * claim or the last renewal that extended it was sent. PostgreSQL's expiry is the same length after
   * the statement ran, so never earlier: the worker gives a claim up before a rescuer may take it.
   */
  leaseUntil: number;
}

export interface LeaseKeeperDeps {
  /** A client for renewals only, so a renewal never waits for a connection behind the work it protects. */
  sql: Sql;
  workerId: string;
  leaseMs: number;
  logger: Logger;
}

/**
 * Keeps a live worker's claims its own: every third of a lease, renews all the claims it holds in
 * one fenced statement (BullMQ's lock manager extends its locks the same way), so only a dead or
 * stopped worker's claims lapse, however long a delivery or its recording waits on a busy PostgreSQL.
 *
 * A claim a renewal finds no longer this worker's has its delivery aborted: the newer attempt decides
 * the outcome (the recording is fenced anyway). A claim whose lease ran out without a renewal (while
 * PostgreSQL did not answer) is given up the same way, so a delivery not yet performed is not
 * performed late, after a rescuer may have handed the notification to another worker.
 */
export class LeaseKeeper {
  private readonly held = new Map<string, HeldClaim>();
  private readonly periodic: Periodic;
  /** The renewal under way; not awaited by the timer, so a renewal that hangs delays no lapse check. */
  private renewing: Promise<void> | undefined;

  constructor(private readonly deps: LeaseKeeperDeps) {
    this.periodic = new Periodic(
      async () => this.tick(),
      deps.leaseMs / RENEWALS_PER_LEASE,
      (err) => deps.logger.warn({ err }, 'lease check failed'),
    );
  }

  start(): void {
    this.periodic.start(this.deps.leaseMs / RENEWALS_PER_LEASE);
  }

  /** Stops renewing; a renewal under way is left to finish or fail with its connection. */
  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Holds `claim`, whose claim statement was sent at `claimSentAt` (ms since epoch). */
  hold(claim: Claim, claimSentAt: number): HeldClaim {
    const held = { claim, abort: new AbortController(), leaseUntil: claimSentAt + this.deps.leaseMs };
    this.held.set(claimKey(claim), held);
    return held;
  }

  /** Stops renewing `held`: its outcome is recorded, or it was released. */
  release(held: HeldClaim): void {
    if (this.held.get(claimKey(held.claim)) === held) this.held.delete(claimKey(held.claim));
  }

  /** The claims held now. */
  claims(): HeldClaim[] {
    return [...this.held.values()];
  }

  private tick(): void {
    this.giveUpLapsed(Date.now());
    this.renewing ??= this.renew()
      .catch((err: unknown) => this.deps.logger.warn({ err, claims: this.held.size }, 'lease renewal failed; trying again'))
      .finally(() => (this.renewing = undefined));
  }

  private giveUpLapsed(now: number): void {
    for (const held of this.held.values()) {
      if (now < held.leaseUntil || held.abort.signal.aborted) continue;
      this.deps.logger.warn({ notificationId: held.claim.id, attempt: held.claim.attempt }, 'lease ran out without a renewal; giving the claim up');
      held.abort.abort(new Error('the lease ran out without a renewal (PostgreSQL did not answer); the claim is given up'));
    }
  }

  private async renew(): Promise<void> {
    const held = this.claims();
    if (held.length === 0) return;
    const sentAt = Date.now();
    const { renewed, lost } = await renewClaims(this.deps.sql, this.deps.workerId, held.map((h) => h.claim), this.deps.leaseMs);
    for (const h of held) {
      const key = claimKey(h.claim);
      // Ended meanwhile (recorded or released): whatever the renewal saw no longer matters.
      if (this.held.get(key) !== h) continue;
      if (renewed.has(key)) h.leaseUntil = sentAt + this.deps.leaseMs;
      else if (lost.has(key)) this.lose(h);
    }
  }

  /**
   * The row is no longer PROCESSING under this worker's attempt: taken over, or (in the moment
   * before its recording returns) finished by this worker itself, when the abort comes after the
   * delivery and changes nothing.
   */
  private lose(held: HeldClaim): void {
    this.held.delete(claimKey(held.claim));
    this.deps.logger.info({ notificationId: held.claim.id, attempt: held.claim.attempt }, 'claim no longer held; a delivery of it still running is aborted');
    held.abort.abort(new Error('the claim is no longer held: a newer attempt decides the outcome'));
  }
}
