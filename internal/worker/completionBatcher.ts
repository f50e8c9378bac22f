import type { Sql } from '../platform/database.ts';
import { GroupCommit } from '../platform/groupCommit.ts';
import type { InboxItem } from '../domain/inboxItem.ts';
import { claimKey } from '../repository/claims.ts';
import { markSentMany, type Completion } from '../repository/completions.ts';

/** Most attempts recorded by one statement; a worker's concurrency rarely reaches it. */
const DEFAULT_MAX_BATCH = 200;

/**
 * Records delivered attempts SENT in batches (see `GroupCommit`), so a busy worker commits one
 * transaction (one WAL flush) for many deliveries instead of one each. Each caller learns whether
 * its own claim still held; a failed write rejects every caller of that batch, and each retries on
 * its own (the statement is idempotent per attempt: it is fenced).
 */
export class CompletionBatcher {
  private readonly batches: GroupCommit<Completion, boolean>;

  /** `onInboxed` hears of the inbox items each batch committed, to announce them. */
  constructor(sql: Sql, options: { maxBatch?: number; onInboxed?: (items: InboxItem[]) => void } = {}) {
    this.batches = new GroupCommit(async (completions) => {
      const recorded = await markSentMany(sql, completions);
      options.onInboxed?.([...recorded.values()].filter((item) => item !== undefined));
      return completions.map((c) => ({ ok: true, value: recorded.has(claimKey(c.claim)) }));
    }, options.maxBatch ?? DEFAULT_MAX_BATCH);
  }

  /** Resolves true when the attempt was recorded SENT, false when its claim had been taken over. */
  complete(completion: Completion): Promise<boolean> {
    return this.batches.submit(completion);
  }
}
