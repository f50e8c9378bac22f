/**
 * Batch writes at once, each on its own pool connection. One at a time would batch best, but a
 * write hanging on a half-open connection would then hold up every later one until TCP gives up.
 */
const MAX_WRITES_IN_FLIGHT = 4;

/** What one item of a batch came to: its value, or an error of its own while the others went on. */
export type ItemOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Group commit without a timer: the first item submitted is written as soon as the current turn of
 * the event loop ends (so the items arriving in that turn share the write); while the writes under
 * way are at their limit, arrivals queue up and go together in the next one. An idle process waits
 * no longer than for a write of its own, a busy one batches by itself.
 *
 * `writeBatch` answers each item, in order; if it throws, every item of that batch is rejected
 * with the error.
 */
export class GroupCommit<T, R> {
  private waiting: Waiting<T, R>[] = [];
  private writesInFlight = 0;
  private scheduled = false;

  constructor(
    private readonly writeBatch: (items: T[]) => Promise<ItemOutcome<R>[]>,
    private readonly maxBatch: number,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.writesInFlight >= MAX_WRITES_IN_FLIGHT || this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    // setImmediate, not a timer: gathers what arrives in this turn of the event loop, adds no delay.
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
      const outcomes = await this.writeBatch(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) w.resolve(outcome.value);
        else w.reject(outcome ? outcome.error : new Error('the batch write gave no answer for this item'));
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.writesInFlight--;
      this.schedule();
    }
  }
}

interface Waiting<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (err: unknown) => void;
}
