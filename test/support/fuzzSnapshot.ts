import type { TestApi } from '../integration/helpers.ts';

/*
 * What a request could have changed: every table and the Redis queue and dead-letter lists, taken
 * before and after it so that a refused request can be shown to have changed nothing.
 */

/** Every table of the schema; the test checks that none is missing. */
export const TABLES = [
  'notifications',
  'notification_attempts',
  'idempotency_keys',
  'fanouts',
  'recipients',
  'push_subscriptions',
  'channel_opt_outs',
  'topic_subscriptions',
  'inbox_items',
  'inbox_counters',
  'api_keys',
  'dead_letter_replays',
] as const;

export interface Snapshot {
  tables: Record<string, { rows: number; hash: string }>;
  queue: number;
  dlq: number;
}

/** Rows and a hash of their versions per table, and the lengths of the queue and dead-letter lists. */
export async function snapshot(api: Pick<TestApi, 'sql' | 'queue'>): Promise<Snapshot> {
  const { sql } = api;
  // (ctid, xmin) names a row version: any insert, update or delete changes the set, and reading it
  // leaves the long columns alone (hashing whole rows made each snapshot three times slower).
  // api_keys' own columns are compared instead: a request with a good key sets last_used_at.
  const version = (table: string) =>
    table === 'api_keys' ? sql`(x.id, x.key_hash, x.scopes, x.revoked_at)::text` : sql`(x.ctid, x.xmin)::text`;
  const parts = TABLES.map(
    (table) => sql`
      select ${table}::text as name, count(*)::int as rows, coalesce(sum(hashtext(${version(table)})::bigint), 0)::text as hash
      from ${sql(table)} x`,
  );
  const union = parts.reduce((all, part) => sql`${all} union all ${part}`);
  const [rows, queue, dlq] = await Promise.all([
    sql<{ name: string; rows: number; hash: string }[]>`${union}`,
    api.queue.depth(),
    api.queue.deadLetterDepth(),
  ]);
  return { tables: Object.fromEntries(rows.map((r) => [r.name, { rows: r.rows, hash: r.hash }])), queue, dlq };
}

/** What changed between two snapshots, as `table: rows a → b` lines; empty when nothing did. */
export function changes(before: Snapshot, after: Snapshot): string[] {
  const lines: string[] = [];
  for (const table of TABLES) {
    const a = before.tables[table]!;
    const b = after.tables[table]!;
    if (a.rows !== b.rows) lines.push(`${table}: ${a.rows} → ${b.rows} rows`);
    else if (a.hash !== b.hash) lines.push(`${table}: a row changed`);
  }
  if (before.queue !== after.queue) lines.push(`queue: ${before.queue} → ${after.queue}`);
  if (before.dlq !== after.dlq) lines.push(`dead-letter list: ${before.dlq} → ${after.dlq}`);
  return lines;
}
