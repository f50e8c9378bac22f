import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from '../platform/redis.ts';

export interface RateLimitSettings {
  /** Requests per second per API key; 0 turns the limit off. */
  perKeyPerSecond: number;
  /** Requests per second per client address on routes that take no API key; 0 turns it off. */
  perAddressPerSecond: number;
  /** Failed API key checks per minute per client address; 0 turns the limit off. */
  authFailuresPerMinute: number;
  /** Prefix of the Redis keys that count. */
  keyPrefix: string;
}

/** The API's limits; one that is off is absent. */
export interface RateLimits {
  perKey?: RateLimiterAbstract;
  perAddress?: RateLimiterAbstract;
  /** Counts failed API key checks per client address (the API key verifier reads and adds to it). */
  authFailures?: RateLimiterAbstract;
}

/**
 * A limit counted in Redis, so it holds across API instances. While Redis is away each process
 * counts on its own (the insurance limiter) rather than letting everything through or refusing
 * everything.
 */
function limiter(redis: Redis, points: number, durationSeconds: number, keyPrefix: string): RateLimiterAbstract {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points,
    duration: durationSeconds,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration: durationSeconds }),
  });
}

/**
 * The limits RATE_LIMIT_PER_SECOND, RATE_LIMIT_IP_PER_SECOND and AUTH_FAILURES_PER_MINUTE ask for,
 * counted in Redis.
 */
export function createRateLimits(redis: Redis, settings: RateLimitSettings): RateLimits {
  const { keyPrefix } = settings;
  return {
    perKey: settings.perKeyPerSecond > 0 ? limiter(redis, settings.perKeyPerSecond, 1, `${keyPrefix}:key`) : undefined,
    perAddress: settings.perAddressPerSecond > 0 ? limiter(redis, settings.perAddressPerSecond, 1, `${keyPrefix}:address`) : undefined,
    authFailures: settings.authFailuresPerMinute > 0 ? limiter(redis, settings.authFailuresPerMinute, 60, `${keyPrefix}:auth-failures`) : undefined,
  };
}
