import type { Sql } from '../platform/database.ts';
import { GroupCommit } from '../platform/groupCommit.ts';
import { claimKey, type Claim } from '../repository/claims.ts';
import { markSentMany } from '../repository/completions.ts';

/** Most attempts recorded by one statement; a worker's concurrency rarely reaches it. */
const DEFAULT_MAX_BATCH = 200;

/**
 * Records delivered attempts SENT in batches (see `GroupCommit`), so a busy worker commits one
 * transaction (one WAL flush) for many deliveries instead of one each. Each caller learns whether
 * its own claim still held; a failed write rejects every caller of that batch, and each retries on
 * its own (the statement is idempotent per attempt: it is fenced).
 */
export class CompletionBatcher {
  private readonly batches: GroupCommit<Claim, boolean>;

  constructor(sql: Sql, options: { maxBatch?: number } = {}) {
    this.batches = new GroupCommit(async (claims) => {
      const recorded = await markSentMany(sql, claims);
      return claims.map((c) => ({ ok: true, value: recorded.has(claimKey(c)) }));
    }, options.maxBatch ?? DEFAULT_MAX_BATCH);
  }

  /** Resolves true when the attempt was recorded SENT, false when its claim had been taken over. */
  complete(claim: Claim): Promise<boolean> {
    return this.batches.submit(claim);
  }
}
