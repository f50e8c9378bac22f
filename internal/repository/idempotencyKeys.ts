import type { Sql, Tx } from '../platform/database.ts';
import { IdempotencyConflictError } from '../domain/errors.ts';

export interface IdempotencyClaim {
  key: string;
  /** Hash of the request; a repeat with another hash is a conflict. */
  requestHash: string;
}

/** What a key was first used to create: one notification or one fan-out. */
export type IdempotencyTarget = { notificationId: string; fanoutId?: never } | { fanoutId: string; notificationId?: never };

/**
 * What an earlier request with this key created, if any, without claiming the key: a repeat is
 * answered from it before anything else is checked, so what changed since (a user's address) cannot
 * turn a repeat of a stored request into a refusal. Throws `IdempotencyConflictError` when the key
 * was used for a different request.
 */
export async function findIdempotencyKey(sql: Sql, claim: IdempotencyClaim): Promise<IdempotencyTarget | undefined> {
  const [existing] = await sql<KeyRow[]>`
    select request_hash, notification_id, fanout_id from idempotency_keys where key = ${claim.key}`;
  return existing ? targetOf(claim, existing) : undefined;
}

interface KeyRow {
  request_hash: string;
  notification_id: string | null;
  fanout_id: string | null;
}

function targetOf(claim: IdempotencyClaim, existing: KeyRow): IdempotencyTarget {
  if (existing.request_hash !== claim.requestHash) {
    throw new IdempotencyConflictError(`Idempotency-Key "${claim.key}" was already used with a different request`);
  }
  return existing.notification_id ? { notificationId: existing.notification_id } : { fanoutId: existing.fanout_id! };
}

/**
 * Claims `claim.key` for `target` inside the caller's transaction. Returns undefined when the key
 * is new (the caller goes on to create the target, and the key commits with it), or the target
 * an earlier request with the same key and the same request created. A concurrent request with
 * the same key waits on the key's unique index until the first one commits or rolls back.
 * Throws `IdempotencyConflictError` when the key was used for a different request.
 */
export async function claimIdempotencyKey(
  tx: Tx,
  claim: IdempotencyClaim,
  target: IdempotencyTarget,
): Promise<IdempotencyTarget | undefined> {
  const [claimed] = await tx`
    insert into idempotency_keys (key, request_hash, notification_id, fanout_id)
    values (${claim.key}, ${claim.requestHash}, ${target.notificationId ?? null}, ${target.fanoutId ?? null})
    on conflict (key) do nothing
    returning key`;
  if (claimed) return undefined;
  const [existing] = await tx<KeyRow[]>`
    select request_hash, notification_id, fanout_id from idempotency_keys where key = ${claim.key}`;
  if (!existing) throw new Error(`idempotency key "${claim.key}" vanished while its conflict was being read`);
  return targetOf(claim, existing);
}

/** Forgets Idempotency-Keys older than `maxAgeMs`, a batch at a time; returns how many it deleted. */
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
