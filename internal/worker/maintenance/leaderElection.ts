import type { Sql } from '../../platform/database.ts';
import type { Logger } from '../../platform/logger.ts';
import { holdsMaintenanceLock, releaseMaintenanceLock, tryTakeMaintenanceLock } from '../../repository/maintenanceLock.ts';
import { Periodic } from '../periodic.ts';

/**
 * How often a follower tries to take the lock, and the leader checks that it still holds it
 * (jittered by `Periodic`, so at most 1.2 times this): the longest a stopped or killed leader's
 * duties wait for a successor, and about the longest a cut-off leader keeps running jobs.
 */
export const ELECTION_INTERVAL_MS = 2000;
/** A check PostgreSQL does not answer within this long counts as leadership lost. */
export const CHECK_TIMEOUT_MS = 2000;
/**
 * PostgreSQL ends the leader's session after this long without a statement (see
 * `tryTakeMaintenanceLock`), freeing the lock of a leader that froze or whose network went silent.
 * Five checks fit in it, so a live leader's session never reaches it; a frozen leader's successor
 * takes over within this plus one election interval.
 */
export const LEADER_SESSION_IDLE_LIMIT_MS = 10_000;

export interface LeaderElectionDeps {
  /**
   * A client of one connection used for nothing else: the lock lives in that connection's session.
   * Not `sql.reserve()` on the worker's pool: postgres.js hands a reserved connection that dropped
   * back to the pool, where the reserved handle would then share it with deliveries.
   */
  session: Sql;
  logger: Logger;
  /**
   * Called once leadership is gained, and once it is lost or given up; on giving up, the lock is
   * released only after what this returns has settled (the jobs have stopped).
   */
  onChange: (leading: boolean) => void | Promise<void>;
}

/**
 * Which worker runs the maintenance jobs: the one whose session holds a PostgreSQL advisory lock.
 *
 * Why PostgreSQL rather than a Redis key with an expiry: PostgreSQL is the record the jobs work on,
 * so a worker that cannot reach it could not do the jobs anyway, and the lock dies with the session
 * (a killed process, a cut connection, a PostgreSQL restart) without a renewal protocol of our own.
 * A Redis key can be lost (Redis keeps no promise to persist it, and a failover may drop it), and
 * then two workers lead at once while both believe they are alone. Either way the jobs' statements
 * stay safe to run twice (SKIP LOCKED takes, fenced updates): the lock saves work, not correctness.
 * It needs a direct connection or a session-mode pooler; a transaction-mode PgBouncer would hand
 * the session to others.
 */
export class LeaderElection {
  private readonly periodic: Periodic;
  private leading = false;

  constructor(private readonly deps: LeaderElectionDeps) {
    this.periodic = new Periodic(() => this.tick(), ELECTION_INTERVAL_MS, (err) => {
      this.deps.logger.warn({ err }, 'maintenance election failed');
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.periodic.start();
  }

  /** Stops trying, and gives leadership up at once so another worker need not wait for the session to die. */
  async stop(): Promise<void> {
    await this.periodic.stop();
    if (!this.leading) return;
    await this.lose('stopping');
    await withinMs(releaseMaintenanceLock(this.deps.session), CHECK_TIMEOUT_MS).catch((err: unknown) => {
      this.deps.logger.warn({ err }, 'could not release the maintenance lock; PostgreSQL frees it with the session');
    });
  }

  private async tick(): Promise<void> {
    try {
      if (this.leading) await this.check();
      else await this.tryToLead();
    } catch (err) {
      if (this.leading) await this.lose('lock check failed', err);
      else this.deps.logger.debug({ err }, 'could not try the maintenance lock; trying again next interval');
    }
  }

  private async check(): Promise<void> {
    if (!(await withinMs(holdsMaintenanceLock(this.deps.session), CHECK_TIMEOUT_MS))) await this.lose('lock no longer held');
  }

  private async tryToLead(): Promise<void> {
    if (!(await withinMs(tryTakeMaintenanceLock(this.deps.session, LEADER_SESSION_IDLE_LIMIT_MS), CHECK_TIMEOUT_MS))) return;
    this.leading = true;
    this.deps.logger.info('maintenance leadership gained');
    await this.deps.onChange(true);
  }

  private async lose(reason: string, err?: unknown): Promise<void> {
    this.leading = false;
    this.deps.logger.info({ reason, ...(err === undefined ? {} : { err }) }, 'maintenance leadership lost');
    await this.deps.onChange(false);
  }
}

/** `work`'s outcome, or a rejection once `ms` pass (postgres.js cannot cancel a query that hangs). */
async function withinMs<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`PostgreSQL did not answer within ${ms} ms`)), ms);
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
