import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import type { Redis } from '../../internal/platform/redis.ts';
import { fixtureFields, fixtureValue, type FixtureLifetime } from './fixtureValue.ts';
import { connectReadyRedis, testQueueKeys } from './testEnvironment.ts';

/** Redis as a test file's code under test sees it: a client, queue keys of its own, and the queue on them. */
export interface QueueScope {
  /** The service's own kind of client (no offline queue), one per file; tests read the lists through it too. */
  readonly redis: Redis;
  readonly keys: QueueKeys;
  readonly queue: NotificationQueue;
}

/**
 * A Redis client for the file, and queue keys with a `NotificationQueue` on them that are new for
 * each test (`keys: 'test'`, the default: no test sees another's entries) or shared by the file.
 * The run's teardown deletes every key under its prefix.
 */
export function useQueueScope(options: { keys?: FixtureLifetime } = {}): QueueScope {
  const redis = fixtureValue('the test Redis client', 'file', () => connectReadyRedis(), (r) => r.disconnect());
  const scope = fixtureValue('the test queue', options.keys ?? 'test', () => queueOn(redis(), testQueueKeys()), () => {});
  return fixtureFields(scope, ['redis', 'keys', 'queue']);
}

function queueOn(redis: Redis, keys: QueueKeys): QueueScope {
  return { redis, keys, queue: new NotificationQueue(redis, keys) };
}
