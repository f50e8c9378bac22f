import type { Sql } from '../platform/database.ts';

/** The cheapest statement PostgreSQL answers: whether it takes work now, for the readiness check. */
export async function pingDatabase(sql: Sql): Promise<void> {
  await sql`select 1`;
}
