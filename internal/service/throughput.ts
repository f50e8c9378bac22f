import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import type { ThroughputJson } from '../domain/throughput.ts';
import { countPerMinute } from '../repository/throughput.ts';

/** Notifications created, sent and failed per minute over the last `minutes`, oldest first. */
export async function readThroughput(deps: { sql: Sql; requestTimeoutMs: number }, minutes: number): Promise<ThroughputJson> {
  const rows = await runWithDeadline(deps.requestTimeoutMs, () => countPerMinute(deps.sql, minutes));
  return {
    minutes,
    buckets: rows.map((r) => ({ minute: r.minute.toISOString(), created: r.created, sent: r.sent, failed: r.failed })),
  };
}
