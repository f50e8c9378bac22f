import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import type { QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { connectRedis } from '../../internal/platform/redis.ts';
import { FixtureError } from './fixtureError.ts';
import { withDatabase } from './globalSetup.ts';

export interface TestDatabase {
  name: string;
  url: string;
  sql: Sql;
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** The server to create it on; the run's own by default. */
  serverUrl?: string;
  /** An empty database instead of a clone of the run's migrated template (for migration tests). */
  empty?: boolean;
}

/**
 * A fresh, migrated database of this test run's own (a clone of the run's template), or an empty
 * one. When the server refuses, the error is one line naming the server and the database.
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? inject('postgresUrl');
  const { name } = unusedDatabase();
  const admin = connectDatabase(serverUrl, { max: 1, connectTimeoutSeconds: 5 });
  try {
    if (options.empty) await admin`create database ${admin(name)}`;
    else await admin`create database ${admin(name)} template ${admin(inject('templateDatabase'))}`;
  } catch (err) {
    throw new FixtureError(`could not create the test database ${name} on ${serverAddress(serverUrl)}`, err);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const url = withDatabase(serverUrl, name);
  const sql = connectDatabase(url, { max: 5 });
  return {
    name,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      await dropDatabase(name, serverUrl);
    },
  };
}

/** `host:port` of a server URL, for messages (never its password). */
export function serverAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'redis:' ? '6379' : '5432')}`;
}

/**
 * The name and URL of a database that does not exist yet, named after this run so the run's teardown
 * drops it if something creates it.
 */
export function unusedDatabase(): { name: string; url: string } {
  const name = `${inject('runId')}_${randomBytes(4).toString('hex')}`;
  return { name, url: withDatabase(inject('postgresUrl'), name) };
}

/** Drops a database of this run if it exists, ending its connections. */
export async function dropDatabase(name: string, serverUrl = inject('postgresUrl')): Promise<void> {
  const admin = connectDatabase(serverUrl, { max: 1 });
  try {
    await admin`drop database if exists ${admin(name)} with (force)`;
  } finally {
    await admin.end();
  }
}

/** Whether a database of that name exists on the test server. */
export async function databaseExists(name: string): Promise<boolean> {
  const admin = connectDatabase(inject('postgresUrl'), { max: 1 });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    return rows.length === 1;
  } finally {
    await admin.end();
  }
}

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Queue and dead-letter keys of this run's own, so tests never see each other's entries. */
export function testQueueKeys(): QueueKeys {
  const prefix = `${inject('runId')}:${randomBytes(4).toString('hex')}`;
  return { queue: `${prefix}:queue`, dlq: `${prefix}:dlq` };
}

export function testRedisUrl(): string {
  return inject('redisUrl');
}

export function connectTestRedis(): Redis {
  return new Redis(inject('redisUrl'));
}

/** How long a test waits for Redis to accept a connection before it names the server and gives up. */
const REDIS_READY_TIMEOUT_MS = 5000;

/**
 * The service's own Redis client (no offline queue), once it is connected. A Redis that does not
 * answer within a few seconds fails with one line naming it, rather than a hook timing out.
 */
export async function connectReadyRedis(url = testRedisUrl()): Promise<Redis> {
  const redis = connectRedis(url);
  let lastError: unknown = 'no answer';
  redis.on('error', (err) => (lastError = err));
  if (redis.status === 'ready') return redis;
  try {
    await once(redis, 'ready', { signal: AbortSignal.timeout(REDIS_READY_TIMEOUT_MS) });
  } catch (err) {
    redis.disconnect();
    const timedOut = (err as Error).name === 'AbortError';
    throw new FixtureError(`could not connect to the test Redis at ${serverAddress(url)}`, timedOut ? `${String(lastError)} after ${REDIS_READY_TIMEOUT_MS} ms` : err);
  }
  return redis;
}

/**
 * Environment for `cmd/` processes under test: this file's database and keys, and short timings so
 * retries, leases and maintenance runs happen within a test's patience.
 */
export function serviceEnv(db: Pick<TestDatabase, 'url'>, keys: QueueKeys, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_KEY: keys.queue,
    DLQ_KEY: keys.dlq,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_TIMEOUT_MS: '1000',
    LEASE_MS: '3000',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '200',
    SWEEP_INTERVAL_MS: '100',
    SHUTDOWN_GRACE_MS: '2000',
    REQUEST_TIMEOUT_MS: '2000',
    // API keys and limits have tests of their own; elsewhere requests go in without a key, uncounted.
    AUTH_DISABLED: 'true',
    RATE_LIMIT_PER_SECOND: '0',
    RATE_LIMIT_IP_PER_SECOND: '0',
    // Many workers run side by side in tests: each takes any free port for its metrics.
    METRICS_PORT: '0',
    ...overrides,
  };
}
