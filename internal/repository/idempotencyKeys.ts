import type { Sql, Tx } from '../platform/database.ts';
import { IdempotencyConflictError } from '../domain/errors.ts';

export interface IdempotencyClaim {
  /** Whose key it is (`idempotencyOwner`): the same key from another producer is another key. */
  owner: string;
  key: string;
  /** Hash of the request; a repeat with another hash is a conflict. */
  requestHash: string;
}

/** The owner of the keys sent while API keys are off (AUTH_DISABLED): every request is one producer's. */
const NO_API_KEY = 'no-api-key';
/** The owner migration 007 gave the keys stored before keys were scoped; see `findIdempotencyKey`. */
const BEFORE_SCOPING = 'before-scoping';

/** The owner of the keys a producer sends: its API key's id, or one owner for all while keys are off. */
export function idempotencyOwner(apiKeyId: string | null): string {
  return apiKeyId ?? NO_API_KEY;
}

/** What a key was first used to create: one notification or one fan-out. */
export type IdempotencyTarget = { notificationId: string; fanoutId?: never } | { fanoutId: string; notificationId?: never };

/**
 * What an earlier request of the same owner with this key created, if any, without claiming the
 * key: a repeat is answered from it before anything else is checked, so what changed since (a
 * user's address) cannot turn a repeat of a stored request into a refusal. Throws
 * `IdempotencyConflictError` when the owner used the key for a different request. A key stored
 * before keys were scoped, whose owner is unknown, answers only an exact repeat (a retry sent
 * across the upgrade) and is otherwise no match.
 */
export async function findIdempotencyKey(sql: Sql, claim: IdempotencyClaim): Promise<IdempotencyTarget | undefined> {
  const found = await sql<KeyRow[]>`
    select owner, request_hash, notification_id, fanout_id from idempotency_keys
    where key = ${claim.key} and owner in (${claim.owner}, ${BEFORE_SCOPING})`;
  const own = found.find((row) => row.owner === claim.owner);
  if (own) return targetOf(claim, own);
  const unscoped = found.find((row) => row.owner === BEFORE_SCOPING);
  return unscoped && unscoped.request_hash === claim.requestHash ? targetOf(claim, unscoped) : undefined;
}

interface KeyRow {
  owner: string;
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
 * Claims `claim.key` for its owner and `target` inside the caller's transaction. Returns undefined
 * when the key is new to the owner (the caller goes on to create the target, and the key commits
 * with it), or the target an earlier request of the owner with the same key and the same request
 * created. A concurrent request with the same key and owner waits on the primary key until the
 * first one commits or rolls back. Throws `IdempotencyConflictError` when the owner used the key
 * for a different request.
 */
export async function claimIdempotencyKey(
  tx: Tx,
  claim: IdempotencyClaim,
  target: IdempotencyTarget,
): Promise<IdempotencyTarget | undefined> {
  const [claimed] = await tx`
    insert into idempotency_keys (owner, key, request_hash, notification_id, fanout_id)
    values (${claim.owner}, ${claim.key}, ${claim.requestHash}, ${target.notificationId ?? null}, ${target.fanoutId ?? null})
    on conflict (owner, key) do nothing
    returning key`;
  if (claimed) return undefined;
  const [existing] = await tx<KeyRow[]>`
    select owner, request_hash, notification_id, fanout_id from idempotency_keys
    where owner = ${claim.owner} and key = ${claim.key}`;
  if (!existing) throw new Error(`idempotency key "${claim.key}" vanished while its conflict was being read`);
  return targetOf(claim, existing);
}

/** Forgets Idempotency-Keys older than `maxAgeMs`, a batch at a time; returns how many it deleted. */
export async function deleteExpiredIdempotencyKeys(sql: Sql, maxAgeMs: number, limit: number): Promise<number> {
  const result = await sql`
    delete from idempotency_keys
    where (owner, key) in (
      select owner, key from idempotency_keys
      where created_at < now() - make_interval(secs => ${maxAgeMs / 1000})
      limit ${limit}
    )`;
  return result.count;
}
