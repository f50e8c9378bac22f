import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import type { Stats } from '../domain/stats.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { countActiveWorkers, countFailedAttempts, countNotifications } from '../repository/stats.ts';

/** The window of `average_delivery_ms`. */
const AVERAGE_WINDOW_SECONDS = 60 * 60;
/** A worker counts in `workers` when it finished an attempt this recently (or holds a claim now). */
const ACTIVE_WORKER_WINDOW_SECONDS = 60;

export interface StatsDeps {
  sql: Sql;
  queue: Pick<NotificationQueue, 'depth' | 'deadLetterDepth'>;
  requestTimeoutMs: number;
}

/**
 * Totals from PostgreSQL, the record, and the queue's lengths from Redis. PostgreSQL is bounded by
 * the request deadline (503 past it); Redis is best effort, since its lengths are only hints.
 */
export async function readStats(deps: StatsDeps): Promise<Stats> {
  const [[notifications, attempts, workers], queueSize, dlqSize] = await Promise.all([
    runWithDeadline(deps.requestTimeoutMs, () =>
      Promise.all([
        countNotifications(deps.sql, AVERAGE_WINDOW_SECONDS),
        countFailedAttempts(deps.sql),
        countActiveWorkers(deps.sql, ACTIVE_WORKER_WINDOW_SECONDS),
      ]),
    ),
    deps.queue.depth().catch(() => null),
    deps.queue.deadLetterDepth().catch(() => null),
  ]);
  return {
    sent_total: notifications.byStatus.SENT,
    failed_total: notifications.byStatus.FAILED,
    failed_attempts_total: attempts.failedAttempts,
    retries_total: attempts.retries,
    average_delivery_ms: notifications.averageDeliveryMs,
    queue_size: queueSize,
    dlq_size: dlqSize,
    workers,
    by_status: notifications.byStatus,
  };
}
