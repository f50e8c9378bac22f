import { randomBytes } from 'node:crypto';
import { BenchEnvironment, type Sql } from '../../bench/lib/environment.ts';

export type { Sql };

/** Timings short enough that leases, retries and maintenance all happen many times in a minute. */
export const LEASE_MS = 4000;
export const WEBHOOK_TIMEOUT_MS = 2000;
export const REQUEST_TIMEOUT_MS = 2000;
export const WORKER_CONCURRENCY = 6;

/** PostgreSQL connections a run holds: two API pools of 10, three workers' pools and lock sessions, the run's own. */
const NEEDED_CONNECTIONS = 2 * 10 + 3 * (WORKER_CONCURRENCY + 3 + 1) + 6;

/**
 * What a chaos run owns on the shared servers (the benchmark's environment, named for the run): a
 * database created and migrated for it, every Redis key under one prefix (the queue, the
 * dead-letter list, the rate counters under the queue key, the inbox Pub/Sub channels), and a
 * folder for the processes' logs. The shared servers are never stopped, flushed or reconfigured:
 * "Redis FLUSHDB" deletes this prefix's keys (`deleteKeys()`), and cuts happen at the run's own proxies.
 * `namePrefix` starts the database name and the key prefix (a test run's id, so its teardown finds them).
 */
export async function createChaosEnvironment(
  postgresUrl: string,
  redisUrl: string,
  namePrefix: string,
  say: (line: string) => void,
): Promise<ChaosEnvironment> {
  const env = await BenchEnvironment.create(postgresUrl, redisUrl, NEEDED_CONNECTIONS, say, [], `${namePrefix}_chaos`);
  try {
    await env.migrate();
  } catch (err) {
    await env.destroy(false);
    throw err;
  }
  return env;
}

export type ChaosEnvironment = BenchEnvironment;

/** The settings every process of the run gets, before its own proxies' URLs. */
export function processEnv(env: ChaosEnvironment): Record<string, string> {
  return {
    QUEUE_KEY: `${env.redisPrefix}queue`,
    DLQ_KEY: `${env.redisPrefix}dlq`,
    INBOX_CHANNEL: `${env.redisPrefix}inbox`,
    // The API's Pub/Sub connection is open only with a secret: it is one more connection to cut.
    INBOX_JWT_SECRET: randomBytes(24).toString('hex'),
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
    LEASE_MS: String(LEASE_MS),
    MAX_RETRIES: '6',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '1000',
    SWEEP_INTERVAL_MS: '250',
    SHUTDOWN_GRACE_MS: '2000',
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    // Five processes share the machine's PostgreSQL with other work: small pools.
    WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
    AUTH_DISABLED: 'true',
    RATE_LIMIT_PER_SECOND: '0',
    RATE_LIMIT_IP_PER_SECOND: '0',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  };
}
