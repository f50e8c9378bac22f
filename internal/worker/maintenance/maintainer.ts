import type { Sql } from '../../platform/database.ts';
import type { Logger } from '../../platform/logger.ts';
import { Periodic } from '../periodic.ts';
import { LeaderElection } from './leaderElection.ts';
import type { MaintenanceJob } from './maintenanceJob.ts';

/**
 * A new leader's jobs take their first runs at random moments within this long (or within their
 * interval, if shorter) instead of all at once: five statements on five new pool connections at
 * the same instant stalled the deliveries of a worker that had just started on a backlog for about
 * half a second (measured with `npm run bench -- --only drain`).
 */
const FIRST_RUNS_SPREAD_MS = 1000;

export interface MaintainerDeps {
  jobs: MaintenanceJob[];
  /** A client of one connection of its own, holding the leader's lock (see `LeaderElection`). */
  leaderSession: Sql;
  logger: Logger;
  /** Told whenever this worker starts or stops leading (the `herald_maintenance_leader` gauge). */
  onLeadershipChange?: (leading: boolean) => void;
}

/**
 * Runs the maintenance jobs on the one worker that leads, each on its own interval and failing on
 * its own: a job that throws logs one line and runs again next interval, and the others go on.
 * Every worker runs a Maintainer; only the elected one runs jobs, so ten workers cost PostgreSQL
 * one set of maintenance queries, not ten. When leadership is lost the jobs stop between batches.
 */
export class Maintainer {
  private readonly election: LeaderElection;
  private running: { periodics: Periodic[]; abort: AbortController } | undefined;

  constructor(private readonly deps: MaintainerDeps) {
    this.election = new LeaderElection({
      session: deps.leaderSession,
      logger: deps.logger,
      onChange: (leading) => {
        deps.onLeadershipChange?.(leading);
        if (leading) this.startJobs();
        else return this.stopJobs();
      },
    });
  }

  get isLeader(): boolean {
    return this.election.isLeader;
  }

  start(): void {
    this.election.start();
  }

  /**
   * Stops the jobs, waiting for runs under way (they stop between batches), then gives leadership
   * up for another worker to take at its next try.
   */
  stop(): Promise<void> {
    return this.election.stop();
  }

  private startJobs(): void {
    const abort = new AbortController();
    const periodics = this.deps.jobs.map((job) => {
      const periodic = new Periodic(() => this.runJob(job, abort.signal), job.intervalMs, (err) => this.failed(job, err));
      periodic.start(Math.random() * Math.min(FIRST_RUNS_SPREAD_MS, job.intervalMs));
      return periodic;
    });
    this.running = { periodics, abort };
  }

  private async stopJobs(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    if (!running) return;
    running.abort.abort();
    await Promise.all(running.periodics.map((p) => p.stop()));
  }

  private async runJob(job: MaintenanceJob, signal: AbortSignal): Promise<void> {
    const counts = await job.run(signal);
    if (Object.values(counts).some((n) => n > 0)) this.deps.logger.info({ job: job.name, ...counts }, 'maintenance job done');
  }

  private failed(job: MaintenanceJob, err: unknown): void {
    this.deps.logger.warn({ job: job.name, err }, 'maintenance job failed; trying again next interval');
  }
}
