import type { Sql } from '../platform/database.ts';

/**
 * Records one replay of dead letters (a dry run too) in dead_letter_replays: who asked, what they
 * selected, how many notifications went back (or would have). Returns the record's id.
 */
export async function insertReplayRecord(
  sql: Sql,
  record: { requestedBy: string; filter: Record<string, unknown>; count: number; dryRun: boolean },
): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into dead_letter_replays (requested_by, filter, count, dry_run)
    values (${record.requestedBy}, ${sql.json(record.filter as never)}, ${record.count}, ${record.dryRun})
    returning id`;
  return row!.id;
}
