import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from '../platform/redis.ts';

export interface RateLimitSettings {
  /** Requests per second per API key; 0 turns the limit off. */
  perKeyPerSecond: number;
  /** Requests per second per client address on routes that take no API key; 0 turns it off. */
  perAddressPerSecond: number;
  /** Prefix of the Redis keys that count. */
  keyPrefix: string;
}

/** The API's two limits; one that is off is absent. */
export interface RateLimits {
  perKey?: RateLimiterAbstract;
  perAddress?: RateLimiterAbstract;
}

/**
 * A limit counted in Redis, so it holds across API instances. While Redis is away each process
 * counts on its own (the insurance limiter) rather than letting everything through or refusing
 * everything.
 */
function limiter(redis: Redis, perSecond: number, keyPrefix: string): RateLimiterAbstract {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points: perSecond,
    duration: 1,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points: perSecond, duration: 1 }),
  });
}

/** The limits RATE_LIMIT_PER_SECOND and RATE_LIMIT_IP_PER_SECOND ask for, counted in Redis. */
export function createRateLimits(redis: Redis, settings: RateLimitSettings): RateLimits {
  return {
    perKey: settings.perKeyPerSecond > 0 ? limiter(redis, settings.perKeyPerSecond, `${settings.keyPrefix}:key`) : undefined,
    perAddress: settings.perAddressPerSecond > 0 ? limiter(redis, settings.perAddressPerSecond, `${settings.keyPrefix}:address`) : undefined,
  };
}
