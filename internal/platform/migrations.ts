import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from './database.ts';

/** Any fixed number: it names the lock that serialises migrators across processes. */
const MIGRATION_LOCK_ID = 727_001;

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '..', '..', 'migrations');

/**
 * Applies the pending `migrations/*.sql` in name order, each once, recording each in
 * `schema_migrations`; all of them in one transaction, so a failing file leaves the schema as it
 * was. Concurrent migrators queue on an advisory lock, so running this from several processes at
 * once is safe. Returns the names it applied.
 */
export async function migrate(
  sql: Sql,
  onApplied: (name: string) => void = () => {},
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return sql.begin(async (tx) => {
    // Transaction-scoped, so a migrator that dies releases the lock with its connection.
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`;
    await tx`
      create table if not exists schema_migrations (
        name       text primary key,
        applied_at timestamptz not null default now()
      )`;
    const done = new Set((await tx<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name));
    const applied: string[] = [];
    for (const name of files.filter((f) => !done.has(f))) {
      const text = await readFile(path.join(dir, name), 'utf8');
      await tx.savepoint(async (sp) => {
        await sp.unsafe(text);
        await sp`insert into schema_migrations (name) values (${name})`;
      });
      applied.push(name);
      onApplied(name);
    }
    return applied;
  });
}
