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

/** Slack on top of a blocking pop's own timeout before the pop is taken for lost. */
const BLOCKING_COMMAND_SLACK_MS = 5000;

/**
 * A client for blocking pops. It has a connection of its own (a blocked connection serves nobody
 * else), and it resends a pop cut by a reconnect. Its command timeout sits well above any pop's own
 * timeout, so only a connection that went silent (a network blackhole) trips it, and the worker's
 * loop goes on instead of waiting forever.
 */
export function connectBlockingRedis(url: string, popTimeoutSeconds: number): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    commandTimeout: popTimeoutSeconds * 1000 + BLOCKING_COMMAND_SLACK_MS,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/**
 * A client for one-shot scripts: it waits for Redis to connect rather than failing its first
 * command, but gives up on any command after `commandTimeoutMs`.
 */
export function connectScriptRedis(url: string, commandTimeoutMs = 10_000): Redis {
  return new Redis(url, { commandTimeout: commandTimeoutMs, maxRetriesPerRequest: 3 });
}

/**
 * A client for Pub/Sub subscriptions, which take a connection of their own. It resubscribes by
 * itself after a reconnect; what was published meanwhile is caught up from PostgreSQL.
 */
export function connectSubscriberRedis(url: string): Redis {
  return new Redis(url, {
    // The ready check is an INFO, which a connection already in subscriber mode refuses: a
    // SUBSCRIBE sent in the first moments of a connection would make ioredis drop the connection,
    // and the subscription with it.
    enableReadyCheck: false,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}
