import type { Sql } from '../../platform/database.ts';
import { deleteExpiredIdempotencyKeys } from '../../repository/idempotencyKeys.ts';
import { inBatches, type MaintenanceJob } from './maintenanceJob.ts';

/** Idempotency-Keys are kept at least this long (the contract says 24 h). */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/** Keys only have to outlive 24 h: a minute late changes nothing, and checking once a minute costs nothing. */
export const IDEMPOTENCY_KEY_CLEAN_INTERVAL_MS = 60_000;
const KEY_BATCH_SIZE = 1000;
/** Up to 10,000 keys a minute: more than the API's busiest day adds. */
const MAX_KEY_BATCHES_PER_RUN = 10;

/** Forgets Idempotency-Keys older than 24 h; the same request then creates a new notification. */
export class IdempotencyKeyCleaner implements MaintenanceJob {
  readonly name = 'idempotencyKeyCleaner';
  readonly intervalMs = IDEMPOTENCY_KEY_CLEAN_INTERVAL_MS;

  constructor(private readonly deps: { sql: Sql }) {}

  async run(signal?: AbortSignal): Promise<{ deleted: number }> {
    const take = () => deleteExpiredIdempotencyKeys(this.deps.sql, IDEMPOTENCY_KEY_TTL_MS, KEY_BATCH_SIZE);
    return { deleted: await inBatches(take, KEY_BATCH_SIZE, MAX_KEY_BATCHES_PER_RUN, signal) };
  }
}
