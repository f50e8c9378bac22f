import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { migrate } from '../../internal/platform/migrations.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL URL with rights to create databases (its database part is ignored). */
    postgresUrl: string;
    redisUrl: string;
    /** Prefix of every database and Redis key this run creates. */
    runId: string;
    /** A migrated database that each test file clones. */
    templateDatabase: string;
  }
}

const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_REDIS = 'redis://127.0.0.1:6379';
/** Every database and Redis key of a run starts with this, then the run's start time in base 36. */
const RUN_PREFIX = 'herald_test_';
/** A run's databases still there after this long belong to a run that was killed before its teardown. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

/**
 * Finds PostgreSQL and Redis for the run: TEST_DATABASE_URL / TEST_REDIS_URL, else the local
 * servers, else containers when a Docker engine answers. Then migrates a template database that
 * each test file clones. Everything is named after this run and removed at the end.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<unknown>)[] = [];
  const postgresUrl = process.env.TEST_DATABASE_URL ?? (await reachablePostgres(LOCAL_POSTGRES)) ?? (await containerUrl('postgres', stops));
  const redisUrl = process.env.TEST_REDIS_URL ?? (await reachableRedis(LOCAL_REDIS)) ?? (await containerUrl('redis', stops));

  const runId = `${RUN_PREFIX}${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const templateDatabase = `${runId}_template`;
  const admin = postgres(postgresUrl, { max: 1, onnotice: () => {} });
  try {
    await dropAbandonedDatabases(admin);
    await admin`create database ${admin(templateDatabase)}`;
    const template = postgres(withDatabase(postgresUrl, templateDatabase), { max: 1, onnotice: () => {} });
    try {
      await migrate(template);
    } finally {
      await template.end({ timeout: 5 });
    }
  } catch (err) {
    await admin`drop database if exists ${admin(templateDatabase)} with (force)`.catch(() => {});
    await admin.end({ timeout: 5 });
    for (const stop of stops) await stop().catch(() => {});
    throw err;
  }

  project.provide('postgresUrl', postgresUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('runId', runId);
  project.provide('templateDatabase', templateDatabase);

  return async () => {
    const databases = await admin<{ datname: string }[]>`select datname from pg_database where datname like ${runId + '%'}`;
    for (const { datname } of databases) await admin`drop database if exists ${admin(datname)} with (force)`;
    await admin.end();
    await deleteKeys(redisUrl, `${runId}*`);
    for (const stop of stops) await stop();
  };
}

/** When the run that created `database` started, read from its name; undefined for a name of another shape. */
export function runStartedAt(database: string): number | undefined {
  const match = /^herald_test_([0-9a-z]+)_[0-9a-f]{6}(?:_|$)/.exec(database);
  if (!match) return undefined;
  const startedAt = parseInt(match[1]!, 36);
  return Number.isSafeInteger(startedAt) ? startedAt : undefined;
}

/**
 * Drops the databases of runs that were killed before their teardown: those started more than an
 * hour ago. A run started within the hour may still be going, next to this one, and is left alone.
 */
async function dropAbandonedDatabases(admin: postgres.Sql): Promise<void> {
  const rows = await admin<{ datname: string }[]>`select datname from pg_database where datname like ${RUN_PREFIX + '%'}`;
  const cutoff = Date.now() - ABANDONED_AFTER_MS;
  for (const { datname } of rows) {
    const startedAt = runStartedAt(datname);
    if (startedAt === undefined || startedAt >= cutoff) continue;
    await admin`drop database if exists ${admin(datname)} with (force)`.catch((err: unknown) => {
      console.warn(`could not drop the abandoned test database ${datname}: ${String(err)}`);
    });
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function reachablePostgres(url: string): Promise<string | undefined> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return url;
  } catch {
    return undefined;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function reachableRedis(url: string): Promise<string | undefined> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
    return url;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/** Starts a container for `kind`, only where a Docker engine answers. */
async function containerUrl(kind: 'postgres' | 'redis', stops: (() => Promise<unknown>)[]): Promise<string> {
  const { GenericContainer, getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch {
    throw new Error(
      `no ${kind} for the tests: set TEST_${kind === 'postgres' ? 'DATABASE' : 'REDIS'}_URL, start a local ${kind}, or run a Docker engine`,
    );
  }
  if (kind === 'postgres') {
    const c = await new GenericContainer('postgres:15-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .start();
    stops.push(() => c.stop());
    const url = `postgres://postgres@${c.getHost()}:${c.getMappedPort(5432)}/postgres`;
    for (let i = 0; i < 60 && !(await reachablePostgres(url)); i++) await new Promise((r) => setTimeout(r, 500));
    return url;
  }
  const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  stops.push(() => c.stop());
  return `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
}

async function deleteKeys(redisUrl: string, pattern: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
