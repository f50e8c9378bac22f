import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../../domain/errors.ts';
import type { Redis } from '../../platform/redis.ts';

export interface RateLimitSettings {
  /** Requests per second per API key; 0 turns the limit off. */
  perKeyPerSecond: number;
  /** Requests per second per client address on routes that take no API key; 0 turns it off. */
  perAddressPerSecond: number;
  /** Prefix of the Redis keys that count. */
  keyPrefix: string;
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

export interface RateLimits {
  perKey?: RateLimiterAbstract;
  perAddress?: RateLimiterAbstract;
}

export function createRateLimits(redis: Redis, settings: RateLimitSettings): RateLimits {
  return {
    perKey: settings.perKeyPerSecond > 0 ? limiter(redis, settings.perKeyPerSecond, `${settings.keyPrefix}:key`) : undefined,
    perAddress: settings.perAddressPerSecond > 0 ? limiter(redis, settings.perAddressPerSecond, `${settings.keyPrefix}:address`) : undefined,
  };
}

/**
 * Counts each request against `limit` under the name `identify` gives it (none: not counted);
 * past the limit, 429 with Retry-After.
 */
export function rateLimit(limit: RateLimiterAbstract | undefined, identify: (c: Context) => string | undefined, what: string): MiddlewareHandler {
  return async (c, next) => {
    const id = limit && identify(c);
    if (limit && id) {
      try {
        await limit.consume(id);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        throw new TooManyRequestsError(`too many requests for this ${what}: at most ${limit.points} per second`, rejection.msBeforeNext);
      }
    }
    await next();
  };
}

/** The API key's id, once `requireApiKey` has checked it; none when keys are off. */
export const byApiKey = (c: Context): string | undefined => c.get('apiKey')?.id;

/**
 * The client's address as the socket sees it (behind a proxy: the proxy's; rate limit there too);
 * none for a request that came through no socket (`app.request()`).
 */
export const byAddress = (c: Context): string | undefined => {
  if (!c.env?.incoming) return undefined;
  return getConnInfo(c).remote.address;
};
