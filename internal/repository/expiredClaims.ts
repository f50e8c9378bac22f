import type { Sql } from '../platform/database.ts';

export interface ExpiredClaim {
  id: string;
  attempt: number;
  locked_by: string | null;
  retry_count: number;
}

/**
 * PROCESSING rows whose lease ran out: their worker died or hung. Only read: the caller records
 * each as a failed attempt through the fenced update of `recordFailure`, which a second rescuer
 * (or the late worker itself) cannot repeat.
 */
export async function findExpiredClaims(sql: Sql, limit: number): Promise<ExpiredClaim[]> {
  return sql<ExpiredClaim[]>`
    select id, attempt, locked_by, retry_count
    from notifications
    where status = 'PROCESSING' and lease_expires_at < now()
    order by lease_expires_at
    limit ${limit}`;
}
