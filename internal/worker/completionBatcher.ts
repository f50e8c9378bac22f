import type { Sql } from '../database.ts';
import { claimKey, markSentMany, type Completion } from '../repository/lifecycle.ts';

/** Most attempts recorded by one statement; a worker's concurrency rarely reaches it. */
const DEFAULT_MAX_BATCH = 200;

/**
 * Records delivered attempts SENT in batches, so a busy worker commits one transaction (one WAL
 * flush) for many deliveries instead of one each. Group commit without a timer: the first
 * completion to arrive is written as soon as the current tick ends (so those finishing together
 * share it); while a write is under way, the completions arriving queue up and go together in the
 * next one. An idle worker therefore waits no longer than before, a busy one batches by itself.
 * Each caller learns whether its own claim still held; a failed write rejects every caller of that
 * batch, and each retries on its own (the statement is idempotent per attempt: it is fenced).
 */
export class CompletionBatcher {
  private waiting: Waiting[] = [];
  private writing = false;
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
    if (this.writing || this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a timer: gathers what finishes in this turn of the event loop, adds no delay.
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private async write(): Promise<void> {
    if (this.writing) return;
    const batch = this.waiting.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.writing = true;
    try {
      const recorded = await markSentMany(this.sql, batch.map((w) => w.completion));
      for (const w of batch) w.resolve(recorded.has(claimKey(w.completion.claim)));
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.writing = false;
      this.schedule();
    }
  }
}

interface Waiting {
  completion: Completion;
  resolve: (recorded: boolean) => void;
  reject: (err: unknown) => void;
}
