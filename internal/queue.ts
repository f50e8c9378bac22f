import type { Redis } from './redis.ts';

export interface QueueKeys {
  /** List of notification ids to work on: LPUSH to add, BRPOP to take. */
  queue: string;
  /** List of ids of notifications that ended FAILED. */
  dlq: string;
}

/** The Redis side of the pipeline: it only says what to work on next. */
export class NotificationQueue {
  constructor(
    private readonly redis: Redis,
    readonly keys: QueueKeys,
  ) {}

  async push(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.redis.lpush(this.keys.queue, ...ids);
  }

  /** Puts an id taken but not worked on back where the next pop takes it first. */
  async giveBack(id: string): Promise<void> {
    await this.redis.rpush(this.keys.queue, id);
  }

  /** Waits up to `timeoutSeconds` for an id, on `blocking`, a connection used for nothing else. */
  async pop(blocking: Redis, timeoutSeconds: number): Promise<string | null> {
    const popped = await blocking.brpop(this.keys.queue, timeoutSeconds);
    return popped ? popped[1] : null;
  }

  async depth(): Promise<number> {
    return this.redis.llen(this.keys.queue);
  }

  async deadLetter(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.redis.lpush(this.keys.dlq, ...ids);
  }

  /** Dead-letter ids, oldest first (entries are LPUSHed, so the list's tail is the oldest). */
  async deadLetters(): Promise<string[]> {
    return (await this.redis.lrange(this.keys.dlq, 0, -1)).reverse();
  }

  /**
   * Removes the `count` oldest entries, the ones a `deadLetters()` read of that length returned;
   * entries pushed since sit at the head and stay. One command, however long the list.
   */
  async dropOldestDeadLetters(count: number): Promise<void> {
    if (count > 0) await this.redis.ltrim(this.keys.dlq, 0, -(count + 1));
  }

  /** Removes every occurrence of each id from the dead-letter list. */
  async removeDeadLetters(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.lrem(this.keys.dlq, 0, id);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }
}
