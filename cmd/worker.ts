import { closeChannels, createChannels } from '../internal/channels/channelRegistry.ts';
import { connectDatabase } from '../internal/platform/database.ts';
import { InboxPublisher } from '../internal/queue/inboxPublisher.ts';
import { createLogger } from '../internal/platform/logger.ts';
import { serveMetrics } from '../internal/metrics/metricsServer.ts';
import { WorkerMetrics } from '../internal/metrics/workerMetrics.ts';
import { loadConfigOrExit, onShutdownSignal } from '../internal/platform/processLifecycle.ts';
import { NotificationQueue } from '../internal/queue/notificationQueue.ts';
import { connectBlockingRedis, connectRedis } from '../internal/platform/redis.ts';
import { retryPolicyFrom } from '../internal/worker/retryPolicy.ts';
import { FanoutRunner } from '../internal/worker/fanoutRunner.ts';
import { maintenanceJobs } from '../internal/worker/maintenance/maintenanceJobs.ts';
import { Maintainer } from '../internal/worker/maintenance/maintainer.ts';
import { newWorkerId, POP_TIMEOUT_SECONDS, Worker } from '../internal/worker/worker.ts';

const config = loadConfigOrExit();
const logger = createLogger(config, 'worker');
// Room for every concurrent delivery plus the maintenance jobs and the fan-out runner.
const sql = connectDatabase(config.DATABASE_URL, { max: config.WORKER_CONCURRENCY + 3, seqScans: false });
const redis = connectRedis(config.REDIS_URL);
const blocking = connectBlockingRedis(config.REDIS_URL, POP_TIMEOUT_SECONDS);
for (const client of [redis, blocking]) {
  client.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
}
const queue = new NotificationQueue(redis, { queue: config.QUEUE_KEY, dlq: config.DLQ_KEY });
const policy = retryPolicyFrom(config);

const channels = createChannels(config);
const workerId = newWorkerId();
// Lease renewals' connection of their own, outside the pool, so they never queue behind deliveries.
const renewals = connectDatabase(config.DATABASE_URL, { max: 1 });
const metrics = new WorkerMetrics(queue, workerId);
const worker = new Worker({
  workerId,
  metrics,
  sql,
  queue,
  blocking,
  renewals,
  channels,
  inboxPublisher: new InboxPublisher(redis, config.INBOX_CHANNEL, logger),
  policy,
  leaseMs: config.LEASE_MS,
  concurrency: config.WORKER_CONCURRENCY,
  logger,
});
// The maintenance lock's session: one connection of its own, outside the pool (see LeaderElection).
const leaderSession = connectDatabase(config.DATABASE_URL, { max: 1 });
const maintainer = new Maintainer({
  jobs: maintenanceJobs({ sql, queue, policy, config }),
  leaderSession,
  logger: logger.child({ workerId: worker.id, role: 'maintenance' }),
  onLeadershipChange: (leading) => metrics.maintenanceLeadership(leading),
});

const fanouts = new FanoutRunner({
  sql,
  renewals,
  queue,
  workerId: worker.id,
  leaseMs: config.LEASE_MS,
  intervalMs: config.SWEEP_INTERVAL_MS,
  logger: logger.child({ workerId: worker.id, role: 'fanout' }),
});

const metricsServer = serveMetrics(metrics.registry, config.METRICS_PORT, logger);
worker.start();
maintainer.start();
fanouts.start();
logger.info({ workerId: worker.id, concurrency: config.WORKER_CONCURRENCY }, 'worker started');

onShutdownSignal(async (cause) => {
  logger.info({ cause, graceMs: config.SHUTDOWN_GRACE_MS }, 'worker stopping: no new work, finishing deliveries under way');
  // All at once: the worker stops taking work now, while maintenance finishes its runs and hands leadership on.
  const [, , { released }] = await Promise.all([maintainer.stop(), fanouts.stop(), worker.stop(config.SHUTDOWN_GRACE_MS)]);
  await closeChannels(channels);
  await metricsServer.close();
  await Promise.all([sql.end({ timeout: 5 }), leaderSession.end({ timeout: 5 }), renewals.end({ timeout: 5 })]);
  redis.disconnect();
  blocking.disconnect();
  logger.info({ released }, 'worker stopped');
}, logger);
