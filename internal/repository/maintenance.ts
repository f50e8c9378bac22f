import type { Sql } from '../platform/database.ts';

/**
 * Marks up to `limit` PENDING rows that are due and not queued (a retry whose wait is over, a
 * released claim) as queued now and returns their ids, for the caller to push. SKIP LOCKED lets
 * several sweepers share the work.
 */
export async function takeUnqueued(sql: Sql, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update notifications n
    set queued_at = now()
    from (
      select id from notifications
      where status = 'PENDING' and queued_at is null and available_at <= now()
      order by available_at
      limit ${limit}
      for update skip locked
    ) due
    where n.id = due.id
    returning n.id`;
  return rows.map((r) => r.id);
}

/**
 * Like `takeUnqueued`, for PENDING rows queued more than `staleAfterMs` ago that nobody claimed:
 * their queue entry was lost with Redis, or the push after the insert failed.
 */
export async function takeStaleQueued(sql: Sql, staleAfterMs: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update notifications n
    set queued_at = now()
    from (
      select id from notifications
      where status = 'PENDING' and queued_at < now() - make_interval(secs => ${staleAfterMs / 1000})
      order by queued_at
      limit ${limit}
      for update skip locked
    ) stale
    where n.id = stale.id
    returning n.id`;
  return rows.map((r) => r.id);
}

export interface ExpiredClaim {
  id: string;
  attempt: number;
  locked_by: string | null;
  retry_count: number;
}

/** PROCESSING rows whose lease ran out: their worker died or hung. */
export async function findExpiredClaims(sql: Sql, limit: number): Promise<ExpiredClaim[]> {
  return sql<ExpiredClaim[]>`
    select id, attempt, locked_by, retry_count
    from notifications
    where status = 'PROCESSING' and lease_expires_at < now()
    order by lease_expires_at
    limit ${limit}`;
}

/**
 * FAILED rows whose id never reached the dead-letter list (Redis was down when they failed, or the
 * worker died in between), older than `graceMs` so the failing worker's own push is not raced.
 */
export async function findUndeadLettered(sql: Sql, graceMs: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from notifications
    where status = 'FAILED' and dead_lettered_at is null
      and updated_at < now() - make_interval(secs => ${graceMs / 1000})
    limit ${limit}`;
  return rows.map((r) => r.id);
}

export async function markDeadLettered(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    update notifications set dead_lettered_at = now()
    where id = any(${ids}::uuid[]) and status = 'FAILED' and dead_lettered_at is null`;
}

/** Forgets Idempotency-Keys older than `maxAgeMs`, a batch at a time. */
export async function deleteExpiredIdempotencyKeys(sql: Sql, maxAgeMs: number, limit: number): Promise<number> {
  const result = await sql`
    delete from idempotency_keys
    where key in (
      select key from idempotency_keys
      where created_at < now() - make_interval(secs => ${maxAgeMs / 1000})
      limit ${limit}
    )`;
  return result.count;
}
