import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import ipaddr from 'ipaddr.js';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequestsError } from '../../domain/errors.ts';

/** The API's two limits, built by the process (counted in Redis there); one that is off is absent. */
export interface RateLimits {
  perKey?: RateLimiterAbstract;
  perAddress?: RateLimiterAbstract;
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
 * The client's address as the socket sees it (behind a proxy: the proxy's; rate limit there too),
 * as `clientNetwork` counts it.
 */
export const byAddress = (c: Context): string | undefined => {
  const address = getConnInfo(c).remote.address;
  return address === undefined ? undefined : clientNetwork(address);
};

/**
 * What one client is counted as: an IPv4 address (also when it reaches an IPv6 socket as
 * `::ffff:a.b.c.d`), or an IPv6 address's /64, the least a network hands one subscriber, so a
 * client cannot step past a limit by taking the next address of its own prefix.
 */
export function clientNetwork(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
