import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { countPerMinute, type MinuteCounts } from '../repository/throughput.ts';

export type { MinuteCounts };

/** Notifications created, sent and failed per minute over the last `minutes`, oldest first. */
export async function readThroughput(deps: { sql: Sql; requestTimeoutMs: number }, minutes: number): Promise<MinuteCounts[]> {
  return runWithDeadline(deps.requestTimeoutMs, () => countPerMinute(deps.sql, minutes));
}
