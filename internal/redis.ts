import { Redis } from 'ioredis';

export type { Redis };

/**
 * A Redis client that fails fast instead of queueing commands while Redis is away: callers treat
 * Redis as a hint (PostgreSQL has the record) and would rather move on than wait.
 */
export function connectRedis(url: string, options: { commandTimeoutMs?: number } = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/**
 * A client for blocking pops. It has a connection of its own (a blocked connection serves nobody
 * else), no command timeout (BRPOP waits by design), and it resends a pop cut by a reconnect.
 */
export function connectBlockingRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}
