import type { Redis } from '../platform/redis.ts';

/** Redis' PING: whether it takes commands now, for the readiness check. */
export async function pingRedis(redis: Redis): Promise<void> {
  await redis.ping();
}
