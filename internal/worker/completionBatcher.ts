import type { Sql } from '../database.ts';
import { claimKey, markSentMany, type Completion } from '../repository/lifecycle.ts';

/**
 * Batch writes at once, each on its own pool connection. One at a time would batch best, but a
 * write hanging on a half-open connection would then hold up every later one until TCP gives up.
 */
const MAX_WRITES_IN_FLIGHT = 4;
/** Most attempts recorded by one statement; a worker's concurrency rarely reaches it. */
const DEFAULT_MAX_BATCH = 200;

/**
 * Records delivered attempts SENT in batches, so a busy worker commits one transaction (one WAL
 * flush) for many deliveries instead of one each. Group commit without a timer: the first
 * completion to arrive is written as soon as the current tick ends (so those finishing together
 * share it); while the writes under way are at their limit, the completions arriving queue up
 * and go together in the next one. An idle worker therefore waits no longer than before, a busy one batches by itself.
 * Each caller learns whether its own claim still held; a failed write rejects every caller of that
 * batch, and each retries on its own (the statement is idempotent per attempt: it is fenced).
 */
export class CompletionBatcher {
  private waiting: Waiting[] = [];
  /** Batch writes under way; more than one, so a write stuck on a dead connection stalls no one else. */
  private writesInFlight = 0;
  private scheduled = false;

  constructor(
    private readonly sql: Sql,
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {}

  /** Resolves true when the attempt was recorded SENT, false when its claim had been taken over. */
  complete(completion: Completion): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.push({ completion, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.writesInFlight >= MAX_WRITES_IN_FLIGHT || this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a timer: gathers what finishes in this turn of the event loop, adds no delay.
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private async write(): Promise<void> {
    const batch = this.waiting.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.writesInFlight++;
    try {
      const recorded = await markSentMany(this.sql, batch.map((w) => w.completion));
      for (const w of batch) w.resolve(recorded.has(claimKey(w.completion.claim)));
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.writesInFlight--;
      this.schedule();
    }
  }
}

interface Waiting {
  completion: Completion;
  resolve: (recorded: boolean) => void;
  reject: (err: unknown) => void;
}
