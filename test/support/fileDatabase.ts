import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import { fixtureFields, fixtureValue } from './fixtureValue.ts';
import { createTestDatabase, type TestDatabase } from './testEnvironment.ts';

/** This file's database, as `useTestDatabase` hands it out: read its fields inside tests and hooks. */
export interface FileDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool of 5 connections, ended before the database is dropped. */
  readonly sql: Sql;
}

/**
 * A migrated database of this test file's own (one database per file, as graphile/worker's tests
 * do), created before its first test and dropped after its last.
 */
export function useTestDatabase(): FileDatabase {
  const current = fixtureValue<TestDatabase>('the test database', 'file', () => createTestDatabase(), (db) => db.drop());
  return fixtureFields(current, ['name', 'url', 'sql']);
}

/**
 * A pool of `max` connections of its own to the file's database, for tests that race more
 * claimers or writers than the file's pool of 5 lets run at once; ended after the file's last test.
 */
export function useDatabasePool(db: Pick<FileDatabase, 'url'>, max: number): Pick<FileDatabase, 'sql'> {
  const current = fixtureValue(
    `a pool of ${max} connections`,
    'file',
    () => ({ sql: connectDatabase(db.url, { max }) }),
    (pool) => pool.sql.end({ timeout: 5 }),
  );
  return fixtureFields(current, ['sql']);
}
