import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connectDatabase, ensureDatabase, type Sql } from '../../internal/platform/database.ts';
import { migrate, MIGRATIONS_DIR } from '../../internal/platform/migrations.ts';
import { withDatabase } from '../support/globalSetup.ts';

const created: string[] = [];

function databaseName(label: string): string {
  const name = `${inject('runId')}_${label}_${randomBytes(4).toString('hex')}`;
  created.push(name);
  return name;
}

async function createEmptyDatabase(label: string): Promise<string> {
  const name = databaseName(label);
  const admin = connectDatabase(inject('postgresUrl'), { max: 1 });
  try {
    await admin`create database ${admin(name)}`;
  } finally {
    await admin.end();
  }
  return withDatabase(inject('postgresUrl'), name);
}

async function databaseExists(name: string): Promise<boolean> {
  const admin = connectDatabase(inject('postgresUrl'), { max: 1 });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    return rows.length === 1;
  } finally {
    await admin.end();
  }
}

async function tables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ table_name: string }[]>`
    select table_name from information_schema.tables where table_schema = 'public' order by table_name`;
  return rows.map((r) => r.table_name);
}

afterAll(async () => {
  const admin = connectDatabase(inject('postgresUrl'), { max: 1 });
  try {
    for (const name of created) await admin`drop database if exists ${admin(name)} with (force)`;
  } finally {
    await admin.end();
  }
});

describe('migrate', () => {
  it('applies every migration exactly once when 5 migrators start at once on an empty database', async () => {
    const url = await createEmptyDatabase('migrate');
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
    expect(files.length).toBeGreaterThan(0);

    const pools = Array.from({ length: 5 }, () => connectDatabase(url, { max: 1 }));
    try {
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
    } finally {
      await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
    }
  });

  it('applies only the migrations not yet recorded, in name order, reporting each', async () => {
    const url = await createEmptyDatabase('migrate_order');
    const dir = await mkdtemp(path.join(tmpdir(), 'herald-migrations-'));
    const sql = connectDatabase(url, { max: 1 });
    try {
      await writeFile(path.join(dir, '002_b.sql'), 'alter table a add column b int;');
      await writeFile(path.join(dir, '001_a.sql'), 'create table a (id int primary key);');
      await writeFile(path.join(dir, 'README.md'), 'not a migration');
      const reported: string[] = [];
      expect(await migrate(sql, (n) => reported.push(n), dir)).toEqual(['001_a.sql', '002_b.sql']);
      expect(reported).toEqual(['001_a.sql', '002_b.sql']);

      await writeFile(path.join(dir, '003_c.sql'), 'alter table a add column c int;');
      expect(await migrate(sql, () => {}, dir)).toEqual(['003_c.sql']);
      const columns = await sql<{ column_name: string }[]>`
        select column_name from information_schema.columns where table_name = 'a' order by ordinal_position`;
      expect(columns.map((c) => c.column_name)).toEqual(['id', 'b', 'c']);
    } finally {
      await sql.end({ timeout: 5 });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves the schema as it was when a migration fails', async () => {
    const url = await createEmptyDatabase('migrate_fail');
    const dir = await mkdtemp(path.join(tmpdir(), 'herald-migrations-'));
    const sql = connectDatabase(url, { max: 1 });
    try {
      await writeFile(path.join(dir, '001_ok.sql'), 'create table good (id int);');
      await writeFile(path.join(dir, '002_bad.sql'), 'create table bad (id int); select * from no_such_table;');
      await expect(migrate(sql, () => {}, dir)).rejects.toThrow(/no_such_table/);
      expect(await tables(sql)).toEqual([]);
    } finally {
      await sql.end({ timeout: 5 });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ensureDatabase', () => {
  it('creates a missing database, even when 5 callers race to do it', async () => {
    const name = databaseName('ensure');
    const url = withDatabase(inject('postgresUrl'), name);
    expect(await databaseExists(name)).toBe(false);
    await Promise.all(Array.from({ length: 5 }, () => ensureDatabase(url)));
    expect(await databaseExists(name)).toBe(true);

    const sql = connectDatabase(url, { max: 1 });
    try {
      const [row] = await sql<{ db: string }[]>`select current_database() as db`;
      expect(row!.db).toBe(name);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('leaves an existing database and its contents alone', async () => {
    const url = await createEmptyDatabase('ensure_existing');
    const sql = connectDatabase(url, { max: 1 });
    try {
      await sql`create table kept (id int)`;
      await sql`insert into kept values (1)`;
      await ensureDatabase(url);
      const rows = await sql`select id from kept`;
      expect(rows.map((r) => r.id)).toEqual([1]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('refuses a URL that names no database', async () => {
    const url = new URL(inject('postgresUrl'));
    url.pathname = '/';
    await expect(ensureDatabase(url.toString())).rejects.toThrow(/names no database/);
  });
});
