import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { connectDatabase, ensureDatabase, type Sql } from '../../internal/platform/database.ts';
import { migrate, MIGRATIONS_DIR } from '../../internal/platform/migrations.ts';
import { databaseExists, dropDatabase, unusedDatabase } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';

const scope = useTestScope();

/** An empty database of this test's own, dropped after it. */
async function emptyDatabaseUrl(): Promise<string> {
  return (await scope.database({ empty: true })).url;
}

/** A pool of one connection to `url`, ended after the test (before its database is dropped). */
function pool(url: string): Sql {
  const sql = connectDatabase(url, { max: 1 });
  scope.defer(() => sql.end({ timeout: 5 }));
  return sql;
}

/** A migrations folder of this test's own, removed after it. */
async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'herald-migrations-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

async function tables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ table_name: string }[]>`
    select table_name from information_schema.tables where table_schema = 'public' order by table_name`;
  return rows.map((r) => r.table_name);
}

describe('migrate', () => {
  it('applies every migration exactly once when 5 migrators start at once on an empty database', async () => {
    const url = await emptyDatabaseUrl();
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
    expect(files.length).toBeGreaterThan(0);

    const pools = Array.from({ length: 5 }, () => pool(url));
    const results = await Promise.all(pools.map((sql) => migrate(sql)));
    expect(results.flat().sort()).toEqual(files);
    expect(results.filter((applied) => applied.length > 0)).toHaveLength(1);

    const sql = pools[0]!;
    const recorded = await sql<{ name: string }[]>`select name from schema_migrations order by name`;
    expect(recorded.map((r) => r.name)).toEqual(files);
    expect(await tables(sql)).toEqual(
      expect.arrayContaining(['idempotency_keys', 'inbox_items', 'notification_attempts', 'notifications', 'schema_migrations']),
    );

    const notified: string[] = [];
    expect(await migrate(sql, (name) => notified.push(name))).toEqual([]);
    expect(notified).toEqual([]);
    const again = await sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
    expect(again[0]!.n).toBe(files.length);
  });

  it('applies only the migrations not yet recorded, in name order, reporting each', async () => {
    const sql = pool(await emptyDatabaseUrl());
    const dir = await migrationsDir({
      '002_b.sql': 'alter table a add column b int;',
      '001_a.sql': 'create table a (id int primary key);',
      'README.md': 'not a migration',
    });
    const reported: string[] = [];
    expect(await migrate(sql, (n) => reported.push(n), dir)).toEqual(['001_a.sql', '002_b.sql']);
    expect(reported).toEqual(['001_a.sql', '002_b.sql']);

    await writeFile(path.join(dir, '003_c.sql'), 'alter table a add column c int;');
    expect(await migrate(sql, () => {}, dir)).toEqual(['003_c.sql']);
    const columns = await sql<{ column_name: string }[]>`
      select column_name from information_schema.columns where table_name = 'a' order by ordinal_position`;
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'b', 'c']);
  });

  it('leaves the schema as it was when a migration fails', async () => {
    const sql = pool(await emptyDatabaseUrl());
    const dir = await migrationsDir({
      '001_ok.sql': 'create table good (id int);',
      '002_bad.sql': 'create table bad (id int); select * from no_such_table;',
    });
    await expect(migrate(sql, () => {}, dir)).rejects.toThrow(/no_such_table/);
    expect(await tables(sql)).toEqual([]);
  });
});

describe('ensureDatabase', () => {
  it('creates a missing database, even when 5 callers race to do it', async () => {
    const { name, url } = unusedDatabase();
    scope.defer(() => dropDatabase(name));
    expect(await databaseExists(name)).toBe(false);
    await Promise.all(Array.from({ length: 5 }, () => ensureDatabase(url)));
    expect(await databaseExists(name)).toBe(true);

    const [row] = await pool(url)<{ db: string }[]>`select current_database() as db`;
    expect(row!.db).toBe(name);
  });

  it('leaves an existing database and its contents alone', async () => {
    const url = await emptyDatabaseUrl();
    const sql = pool(url);
    await sql`create table kept (id int)`;
    await sql`insert into kept values (1)`;
    await ensureDatabase(url);
    const rows = await sql`select id from kept`;
    expect(rows.map((r) => r.id)).toEqual([1]);
  });

  it('refuses a URL that names no database', async () => {
    const url = new URL(inject('postgresUrl'));
    url.pathname = '/';
    await expect(ensureDatabase(url.toString())).rejects.toThrow(/names no database/);
  });

  it('gives the Idempotency-Keys stored before 007 the owner before-scoping, and every key after it an owner of its own', async () => {
    const url = await emptyDatabaseUrl();
    const sql = pool(url);
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
    const before = files.filter((f) => f < '007');
    const earlier = await migrationsDir(Object.fromEntries(await Promise.all(before.map(async (f) => [f, await readFile(path.join(MIGRATIONS_DIR, f), 'utf8')]))));
    await migrate(sql, () => {}, earlier);
    const [row] = await sql<{ id: string }[]>`
      insert into notifications (id, user_id, type, body) values (gen_random_uuid(), 'u', 'IN_APP', 'b') returning id`;
    await sql`insert into idempotency_keys (key, request_hash, notification_id) values ('old-key', 'h', ${row!.id})`;

    expect(await migrate(sql)).toContain('007_idempotency_key_owner.sql');

    expect(await sql`select owner, key from idempotency_keys`).toEqual([{ owner: 'before-scoping', key: 'old-key' }]);
    // Two owners may hold the same key; an owner must be named.
    await sql`insert into idempotency_keys (owner, key, request_hash, notification_id) values ('another', 'old-key', 'h', ${row!.id})`;
    await expect(sql`insert into idempotency_keys (key, request_hash, notification_id) values ('k', 'h', ${row!.id})`).rejects.toMatchObject({ code: '23502' });
  });
});
