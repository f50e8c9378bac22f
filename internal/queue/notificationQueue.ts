import type { Redis } from '../platform/redis.ts';

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

  /**
   * Puts ids taken but not worked on (or whose entries were lost) back where the next pops take them
   * first, in the order they were popped (`ids[0]` was popped first, so it goes back nearest the tail).
   */
  async giveBack(ids: string | string[]): Promise<void> {
    const list = typeof ids === 'string' ? [ids] : ids;
    if (list.length > 0) await this.redis.rpush(this.keys.queue, ...[...list].reverse());
  }

  /** Waits up to `timeoutSeconds` for an id, on `blocking`, a connection used for nothing else. */
  async pop(blocking: Redis, timeoutSeconds: number): Promise<string | null> {
    const popped = await blocking.brpop(this.keys.queue, timeoutSeconds);
    return popped ? popped[1] : null;
  }

  /**
   * Takes up to `max` ids in as few round trips as it can: under a backlog one RPOP with a count
   * (Redis 6.2+) takes a whole batch; only an empty queue waits, with BRPOP for up to
   * `timeoutSeconds`, and then takes up to `max - 1` more that arrived alongside the first. Never
   * waits for more once it has one. Empty when the wait timed out.
   */
  async popMany(blocking: Redis, timeoutSeconds: number, max: number): Promise<string[]> {
    // On the blocking connection: it is idle between waits, and the commands stay in order on it.
    const ready = await blocking.rpop(this.keys.queue, max);
    if (ready && ready.length > 0) return ready;
    const first = await this.pop(blocking, timeoutSeconds);
    if (first === null) return [];
    if (max <= 1) return [first];
    // Failing here only loses the chance of a bigger batch: the first id is still worked on, and
    // any id the failed command did take keeps its PENDING row, which maintenance queues again.
    const more = await blocking.rpop(this.keys.queue, max - 1).catch(() => null);
    return more ? [first, ...more] : [first];
  }

  /**
   * Up to `count` ids the next pops take, the next one first: the oldest entries (LRANGE from the
   * tail, which Redis walks from that end, so a long queue costs no more).
   */
  async oldest(count: number): Promise<string[]> {
    return (await this.redis.lrange(this.keys.queue, -count, -1)).reverse();
  }

  async depth(): Promise<number> {
    return this.redis.llen(this.keys.queue);
  }

  /** Ids on the dead-letter list, however long it is (one LLEN, unlike reading it). */
  async deadLetterDepth(): Promise<number> {
    return this.redis.llen(this.keys.dlq);
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
