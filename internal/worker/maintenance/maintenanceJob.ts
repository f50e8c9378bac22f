/**
 * One background duty the elected leader runs on its own interval (river's maintenance services).
 * A run does a bounded share of work, so a backlog is spread over runs and no statement holds
 * many locks or a long transaction.
 */
export interface MaintenanceJob {
  /** Names the job in logs. */
  readonly name: string;
  /** Wait between the end of one run and the start of the next (jittered). */
  readonly intervalMs: number;
  /**
   * One run; resolves to counts worth a log line (all zero: nothing to say). Stops between batches
   * once `signal` aborts: the worker is no longer the leader, or is stopping.
   */
  run(signal?: AbortSignal): Promise<Record<string, number>>;
}

/** Runs `take` until a batch comes back short, `maxBatches` ran, or `signal` aborts; returns the total. */
export async function inBatches(
  take: () => Promise<number>,
  batchSize: number,
  maxBatches: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < maxBatches && !signal?.aborted; batch++) {
    const done = await take();
    total += done;
    if (done < batchSize) break;
  }
  return total;
}
