import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CHANNELS, type Channel, type NotificationRow } from '../domain/notification.ts';
import { newProcessRegistry, type QueueLengths } from './processRegistry.ts';

/** The outcomes a worker's own attempt records (the claim rescuer's LEASE_EXPIRED and RELEASED are not attempts that ran to an end). */
export type AttemptOutcome = 'SENT' | 'RETRY' | 'FAILED' | 'SKIPPED';

/** One attempt: from an in-app write (milliseconds) to a provider's time limit (10 s by default) and beyond. */
const ATTEMPT_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Created to SENT: a delivery at once, or one that waited for retries (the backoff caps at 5 minutes per wait). */
const LATENCY_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * What a worker process counts. Only outcomes the worker's own fenced UPDATE recorded are counted
 * (an attempt whose claim had been taken over decides nothing), so over time these agree with
 * `notification_attempts`.
 */
export class WorkerMetrics {
  readonly registry: Registry;
  private readonly outcomes: Record<AttemptOutcome, Counter<'channel'>>;
  private readonly attemptSeconds: Histogram<'channel' | 'outcome'>;
  private readonly latencySeconds: Histogram<'channel'>;
  private readonly inFlight: Gauge;
  private readonly maintenanceLeader: Gauge;

  constructor(queue: QueueLengths, workerId: string) {
    this.registry = newProcessRegistry(queue);
    const registers = [this.registry];
    const perChannel = (name: string, help: string) => {
      const counter = new Counter({ name, help, labelNames: ['channel'], registers });
      // Every channel from the start, so rate() sees a channel's first notification.
      for (const channel of CHANNELS) counter.inc({ channel }, 0);
      return counter;
    };
    this.outcomes = {
      SENT: perChannel('herald_notifications_sent_total', 'Notifications this worker recorded SENT, by channel'),
      FAILED: perChannel(
        'herald_notifications_failed_total',
        'Notifications this worker recorded FAILED (retries used up, or a permanent failure), by channel',
      ),
      RETRY: perChannel('herald_notifications_retried_total', 'Failed attempts this worker scheduled a retry for (RETRY), by channel'),
      SKIPPED: perChannel('herald_notifications_skipped_total', 'Notifications this worker recorded SKIPPED (opted out), by channel'),
    };
    this.attemptSeconds = new Histogram({
      name: 'herald_delivery_attempt_duration_seconds',
      help: 'One delivery attempt, from its start to its outcome recorded in PostgreSQL, by channel and outcome',
      labelNames: ['channel', 'outcome'],
      buckets: ATTEMPT_BUCKETS_SECONDS,
      registers,
    });
    this.latencySeconds = new Histogram({
      name: 'herald_delivery_latency_seconds',
      help: 'From a notification\'s created_at to its SENT record, retries included, by channel',
      labelNames: ['channel'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.inFlight = new Gauge({
      name: 'herald_deliveries_in_flight',
      help: 'Deliveries this worker has claimed and not yet finished (at most WORKER_CONCURRENCY)',
      registers,
    });
    this.maintenanceLeader = new Gauge({
      name: 'herald_maintenance_leader',
      help: '1 while this worker is the elected one that runs the maintenance jobs, else 0',
      registers,
    });
    this.maintenanceLeader.set(0);
    // Ties this scrape target to the locked_by and worker_id values it writes in PostgreSQL.
    const info = new Gauge({
      name: 'herald_worker_info',
      help: 'This worker\'s id, as in locked_by and notification_attempts.worker_id',
      labelNames: ['worker_id'],
      registers,
    });
    info.set({ worker_id: workerId }, 1);
  }

  /** This worker started (true) or stopped (false) running the maintenance jobs. */
  maintenanceLeadership(leading: boolean): void {
    this.maintenanceLeader.set(leading ? 1 : 0);
  }

  /** A claimed delivery began. */
  deliveryStarted(): void {
    this.inFlight.inc();
  }

  /** A claimed delivery ended, whatever its outcome. */
  deliveryEnded(): void {
    this.inFlight.dec();
  }

  /** The attempt started at `startedAt` (ms since epoch) recorded `outcome` for `row`. */
  attemptRecorded(row: Pick<NotificationRow, 'type' | 'created_at'>, outcome: AttemptOutcome, startedAt: number): void {
    const now = Date.now();
    const channel: Channel = row.type;
    this.outcomes[outcome].inc({ channel });
    this.attemptSeconds.observe({ channel, outcome }, (now - startedAt) / 1000);
    // created_at is PostgreSQL's clock: a worker clock behind it must not make a negative latency.
    if (outcome === 'SENT') this.latencySeconds.observe({ channel }, Math.max(0, now - row.created_at.getTime()) / 1000);
  }
}
