import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { ApiKeyVerifier } from '../internal/service/apiKeyService.ts';
import { closeChannels, createChannels } from '../internal/channels/channelRegistry.ts';
import { connectDatabase } from '../internal/platform/database.ts';
import { createApp } from '../internal/http/app.ts';
import { createRateLimits } from '../internal/queue/rateLimiters.ts';
import { InboxHub } from '../internal/queue/inboxHub.ts';
import { createLogger } from '../internal/platform/logger.ts';
import { ApiMetrics } from '../internal/metrics/apiMetrics.ts';
import { loadConfigOrExit, onShutdownSignal } from '../internal/platform/processLifecycle.ts';
import { NotificationQueue } from '../internal/queue/notificationQueue.ts';
import { connectRedis, connectSubscriberRedis } from '../internal/platform/redis.ts';

/** How long a stopping API waits for requests under way before it closes their connections. */
const DRAIN_TIMEOUT_MS = 10_000;

const config = loadConfigOrExit();
const logger = createLogger(config, 'api');
const sql = connectDatabase(config.DATABASE_URL, {
  connectTimeoutSeconds: Math.max(1, Math.ceil(config.REQUEST_TIMEOUT_MS / 1000)),
});
const redis = connectRedis(config.REDIS_URL);
redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
const queue = new NotificationQueue(redis, { queue: config.QUEUE_KEY, dlq: config.DLQ_KEY });
// Live inbox connections share one Pub/Sub connection, opened only where end users can connect.
const subscriber = config.INBOX_JWT_SECRET ? connectSubscriberRedis(config.REDIS_URL) : undefined;
subscriber?.on('error', (err) => logger.warn({ err: err.message }, 'redis subscriber connection error'));
const endUsers = config.INBOX_JWT_SECRET && subscriber ? { jwtSecret: config.INBOX_JWT_SECRET, hub: new InboxHub(subscriber, config.INBOX_CHANNEL, logger) } : undefined;

if (config.AUTH_DISABLED) logger.warn('AUTH_DISABLED: the API takes requests without an API key; never expose it like this');
if (config.INBOX_DEV_PAGE) logger.warn('INBOX_DEV_PAGE: /dev/token logs anyone in as any user; never expose it like this');

const channels = createChannels(config);
const rateLimits = createRateLimits(redis, {
  perKeyPerSecond: config.RATE_LIMIT_PER_SECOND,
  perAddressPerSecond: config.RATE_LIMIT_IP_PER_SECOND,
  authFailuresPerMinute: config.AUTH_FAILURES_PER_MINUTE,
  keyPrefix: `${config.QUEUE_KEY}:rate`,
});
let draining = false;
const api = createApp({
  sql,
  redis,
  queue,
  channels,
  logger,
  requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
  isDraining: () => draining,
  auth: config.AUTH_DISABLED ? 'disabled' : new ApiKeyVerifier(sql, { failures: rateLimits.authFailures }),
  metrics: new ApiMetrics(queue),
  protection: {
    rateLimits,
    maxQueueDepth: config.MAX_QUEUE_DEPTH,
  },
  inbox: {
    endUsers,
    heartbeatMs: config.INBOX_HEARTBEAT_MS,
    devPage: config.INBOX_DEV_PAGE,
    corsOrigins: config.INBOX_CORS_ORIGINS,
  },
});

const server = serve({ fetch: api.app.fetch, port: config.PORT }, (info) => {
  logger.info({ port: info.port }, 'api listening');
});
api.injectWebSocket(server as Server);

onShutdownSignal(async (cause) => {
  logger.info({ cause }, 'api stopping: no new connections, draining requests under way');
  draining = true;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Live inbox clients reconnect elsewhere and resume from their last seq.
  api.live.closeAll();
  // Connections go idle as their last answers finish (the streams just closed among them); a kept
  // alive idle one would hold the server until its keep-alive timeout, so close them as they come.
  const closeIdle = () => {
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  };
  closeIdle();
  const idleSweep = setInterval(closeIdle, 100);
  const forced = setTimeout(() => {
    if ('closeAllConnections' in server) server.closeAllConnections();
  }, DRAIN_TIMEOUT_MS);
  await closed;
  clearTimeout(forced);
  clearInterval(idleSweep);
  await closeChannels(channels);
  await sql.end({ timeout: 5 });
  redis.disconnect();
  subscriber?.disconnect();
  logger.info('api stopped');
}, logger);
