import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { migrate } from '../../internal/platform/migrations.ts';

export type Sql = postgres.Sql;

/** A failure the user can act on: the message says what to fix. */
export class BenchError extends Error {
  override name = 'BenchError';
}

/** Marks the benchmark's own connections, so they can be told apart from the processes under test. */
export const BENCH_APPLICATION_NAME = 'herald-bench';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function hostOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? '6379' : '5432')}`;
}

function connect(url: string, max: number): Sql {
  return postgres(url, {
    max,
    connect_timeout: 5,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: BENCH_APPLICATION_NAME },
  });
}

export interface ServerFacts {
  postgresVersion: string;
  postgresSettings: Record<string, string>;
  redisVersion: string;
}

/**
 * Everything this run owns on the shared servers: a database `herald_bench_*` created from scratch
 * and migrated, a Redis key prefix `herald_bench_*:`, and a folder for the processes' logs.
 * `destroy()` removes all three (the logs are kept when asked, or when the run failed).
 */
export class BenchEnvironment {
  readonly id: string;
  readonly databaseName: string;
  readonly databaseUrl: string;
  readonly redisPrefix: string;
  private destroyed = false;

  private constructor(
    readonly postgresUrl: string,
    readonly redisUrl: string,
    readonly sql: Sql,
    readonly redis: Redis,
    readonly logDir: string,
    id: string,
  ) {
    this.id = id;
    this.databaseName = id;
    this.databaseUrl = withDatabase(postgresUrl, id);
    this.redisPrefix = `${id}:`;
  }

  /** Checks both servers, then creates and migrates the database. */
  static async create(
    postgresUrl: string,
    redisUrl: string,
    neededConnections: number,
    say: (line: string) => void,
    /** Settings for this database only (`alter database ... set`), in force for every connection to it. */
    settings: [string, string][] = [],
    /** Starts the database's name and the key prefix (the chaos run names its own). */
    namePrefix = 'herald_bench',
  ): Promise<BenchEnvironment> {
    await checkRedis(redisUrl);
    const admin = connect(withDatabase(postgresUrl, 'postgres'), 1);
    try {
      await checkPostgres(admin, postgresUrl, neededConnections, say);
      const id = `${namePrefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
      const logDir = await mkdtemp(path.join(os.tmpdir(), `${id}-`));
      await admin`create database ${admin(id)}`;
      for (const [name, value] of settings) {
        // The name was checked to be an identifier, the id is ours; the value is quoted.
        await admin.unsafe(`alter database "${id}" set ${name} = '${value.replaceAll("'", "''")}'`).catch(async (err: unknown) => {
          await admin`drop database ${admin(id)}`;
          throw new BenchError(`--pg-set ${name}=${value}: ${(err as Error).message}`);
        });
      }
      // The caller registers destroy() before migrating, so a failed migration still drops it.
      return new BenchEnvironment(
        postgresUrl,
        redisUrl,
        connect(withDatabase(postgresUrl, id), 4),
        new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5000 }),
        logDir,
        id,
      );
    } finally {
      await admin.end({ timeout: 5 });
    }
  }

  key(name: string): string {
    return `${this.redisPrefix}${name}`;
  }

  async migrate(): Promise<string[]> {
    return migrate(this.sql);
  }

  /** Empties every table and this run's Redis keys, so each phase starts from the same state. */
  async reset(): Promise<void> {
    await this.sql`truncate notifications, notification_attempts, inbox_items, idempotency_keys`;
    await this.deleteKeys();
  }

  /** A checkpoint now, so one does not land in the middle of a measurement (best effort). */
  async settle(): Promise<void> {
    await this.sql`checkpoint`.catch(() => {});
  }

  /**
   * Transactions committed or rolled back in this database so far. PostgreSQL publishes a
   * backend's counts when it exits (or idles a while), so read this after stopping the processes.
   */
  async transactions(): Promise<number> {
    const [row] = await this.sql<{ n: string }[]>`
      select (xact_commit + xact_rollback)::text as n from pg_stat_database where datname = current_database()`;
    return Number(row?.n ?? Number.NaN);
  }

  async serverFacts(): Promise<ServerFacts> {
    const [{ server_version }] = (await this.sql`show server_version`) as unknown as [{ server_version: string }];
    const settings = await this.sql<{ name: string; setting: string; unit: string | null }[]>`
      select name, setting, unit from pg_settings
      where name in ('max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size')`;
    const info = await this.redis.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    return {
      postgresVersion: server_version,
      postgresSettings: Object.fromEntries(settings.map((s) => [s.name, s.unit ? `${s.setting} (${s.unit})` : s.setting])),
      redisVersion,
    };
  }

  async deleteKeys(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  /** Drops the database and deletes the keys; each step is tried even if another fails. */
  async destroy(keepLogs: boolean): Promise<string[]> {
    if (this.destroyed) return [];
    this.destroyed = true;
    const problems: string[] = [];
    await this.sql.end({ timeout: 2 }).catch(() => {});
    const admin = connect(withDatabase(this.postgresUrl, 'postgres'), 1);
    try {
      await admin`drop database if exists ${admin(this.databaseName)} with (force)`;
    } catch (err) {
      problems.push(`could not drop database ${this.databaseName} (${(err as Error).message}); drop it with: psql -c 'drop database ${this.databaseName} with (force)'`);
    } finally {
      await admin.end({ timeout: 2 }).catch(() => {});
    }
    try {
      await this.deleteKeys();
    } catch (err) {
      problems.push(`could not delete Redis keys ${this.redisPrefix}* (${(err as Error).message})`);
    }
    this.redis.disconnect();
    if (!keepLogs) await rm(this.logDir, { recursive: true, force: true }).catch(() => {});
    return problems;
  }
}

async function checkRedis(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause ??= err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new BenchError(
      `Redis is not answering at ${hostOf(url)} (${(cause ?? (err as Error)).message}): start it, or point BENCH_REDIS_URL at one`,
    );
  } finally {
    redis.disconnect();
  }
}

async function checkPostgres(admin: Sql, url: string, neededConnections: number, say: (line: string) => void): Promise<void> {
  let role;
  try {
    [role] = await admin<{ allowed: boolean }[]>`
      select rolcreatedb or rolsuper as allowed from pg_roles where rolname = current_user`;
  } catch (err) {
    throw new BenchError(
      `PostgreSQL is not answering at ${hostOf(url)} (${(err as Error).message}): start it, or point BENCH_DATABASE_URL at one whose user may create databases`,
    );
  }
  if (!role?.allowed) {
    throw new BenchError(`the PostgreSQL user in BENCH_DATABASE_URL may not create databases: use one that may (e.g. postgres)`);
  }
  const [room] = await admin<{ max: number; reserved: number; used: number }[]>`
    select current_setting('max_connections')::int as max,
           current_setting('superuser_reserved_connections')::int as reserved,
           (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used`;
  const free = room!.max - room!.reserved - room!.used;
  if (free < neededConnections) {
    throw new BenchError(
      `PostgreSQL has room for ${free} more connections (max_connections ${room!.max}, ${room!.used} in use) but this run needs ${neededConnections}: lower --concurrency, or raise max_connections`,
    );
  }
  const stale = await admin<{ datname: string }[]>`select datname from pg_database where datname like 'herald\\_bench\\_%' order by 1`;
  if (stale.length > 0) {
    say(`note: databases of other or earlier benchmark runs exist (${stale.map((s) => s.datname).join(', ')}); if no run is going on, drop them`);
  }
}
