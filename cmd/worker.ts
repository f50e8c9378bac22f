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
import { Sweeper } from '../internal/worker/sweeper.ts';
import { newWorkerId, POP_TIMEOUT_SECONDS, Worker } from '../internal/worker/worker.ts';

const config = loadConfigOrExit();
const logger = createLogger(config, 'worker');
// Room for every concurrent delivery plus the sweeper and the fan-out runner.
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
const metrics = new WorkerMetrics(queue, workerId);
const worker = new Worker({
  workerId,
  metrics,
  sql,
  queue,
  blocking,
  channels,
  inboxPublisher: new InboxPublisher(redis, config.INBOX_CHANNEL, logger),
  policy,
  leaseMs: config.LEASE_MS,
  concurrency: config.WORKER_CONCURRENCY,
  logger,
});
const sweeper = new Sweeper({
  sql,
  queue,
  policy,
  leaseMs: config.LEASE_MS,
  intervalMs: config.SWEEP_INTERVAL_MS,
  retentionDays: config.RETENTION_DAYS,
  logger: logger.child({ workerId: worker.id, role: 'sweeper' }),
});

const fanouts = new FanoutRunner({
  sql,
  queue,
  workerId: worker.id,
  leaseMs: config.LEASE_MS,
  intervalMs: config.SWEEP_INTERVAL_MS,
  logger: logger.child({ workerId: worker.id, role: 'fanout' }),
});

const metricsServer = serveMetrics(metrics.registry, config.METRICS_PORT, logger);
worker.start();
sweeper.start();
fanouts.start();
logger.info({ workerId: worker.id, concurrency: config.WORKER_CONCURRENCY }, 'worker started');

onShutdownSignal(async (signal) => {
  logger.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'worker stopping: no new work, finishing deliveries under way');
  // Both at once: the worker stops taking work now, while the sweeper finishes its pass.
  const [, , { released }] = await Promise.all([sweeper.stop(), fanouts.stop(), worker.stop(config.SHUTDOWN_GRACE_MS)]);
  await closeChannels(channels);
  await metricsServer.close();
  await sql.end({ timeout: 5 });
  redis.disconnect();
  blocking.disconnect();
  logger.info({ released }, 'worker stopped');
});
