import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters, sendToDeadLetters } from '../../internal/service/deadLetters.ts';
import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import type { Redis } from '../../internal/platform/redis.ts';
import { connectTestRedis, createTestDatabase, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { connectReadyRedis, insertPending, rowOf } from './helpers.ts';

describe('dead letters', () => {
  let db: TestDatabase;
  let redis: Redis;
  const inspect = connectTestRedis();
  let keys: QueueKeys;
  let queue: NotificationQueue;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await connectReadyRedis();
  });
  afterAll(async () => {
    redis?.disconnect();
    inspect.disconnect();
    await db?.drop();
  });
  beforeEach(() => {
    keys = testQueueKeys();
    queue = new NotificationQueue(redis, keys);
  });

  async function failedRow(reason = 'webhook answered 500'): Promise<string> {
    const { id } = await insertPending(db.sql);
    await db.sql`update notifications set status = 'FAILED', retry_count = 3, error_reason = ${reason}, queued_at = null where id = ${id}`;
    return id;
  }

  it('sendToDeadLetters pushes ids to the DLQ list and marks the rows', async () => {
    const a = await failedRow();
    const b = await failedRow();
    await sendToDeadLetters(db.sql, queue, [a, b]);
    expect((await inspect.lrange(keys.dlq, 0, -1)).sort()).toEqual([a, b].sort());
    expect((await rowOf(db.sql, a)).dead_lettered_at).not.toBeNull();
    expect((await rowOf(db.sql, b)).dead_lettered_at).not.toBeNull();
  });

  it('lists dead letters oldest first, once each, with their rows, and flags unknown ids', async () => {
    const first = await failedRow('first');
    const second = await failedRow('second');
    const unknown = randomUUID();
    await queue.deadLetter([first]);
    await queue.deadLetter([second]);
    await queue.deadLetter([first]);
    await queue.deadLetter([unknown]);
    const letters = await listDeadLetters(db.sql, queue);
    expect(letters.map((l) => l.id)).toEqual([first, second, unknown]);
    expect(letters[0]!.notification?.error_reason).toBe('first');
    expect(letters[1]!.notification?.status).toBe('FAILED');
    expect(letters[2]!.notification).toBeUndefined();
  });

  it('replays a FAILED notification: PENDING, retry_count 0, queued, gone from the DLQ', async () => {
    const id = await failedRow();
    await sendToDeadLetters(db.sql, queue, [id]);
    await queue.deadLetter([id]);

    const result = await replayDeadLetters(db.sql, queue, [id, id], false);
    expect(result).toEqual({ replayed: [id], skipped: [] });
    const row = await rowOf(db.sql, id);
    expect(row).toMatchObject({ status: 'PENDING', retry_count: 0, error_reason: null, dead_lettered_at: null });
    expect(row.queued_at).not.toBeNull();
    expect(await inspect.lrange(keys.queue, 0, -1)).toEqual([id]);
    expect(await inspect.lrange(keys.dlq, 0, -1)).toEqual([]);
  });

  it('skips ids that are not FAILED and drops their stale DLQ entries', async () => {
    const pending = await insertPending(db.sql);
    const unknown = randomUUID();
    await queue.deadLetter([pending.id, unknown]);
    const result = await replayDeadLetters(db.sql, queue, [pending.id, unknown], false);
    expect(result).toEqual({ replayed: [], skipped: [pending.id, unknown] });
    expect((await rowOf(db.sql, pending.id)).status).toBe('PENDING');
    expect(await inspect.lrange(keys.queue, 0, -1)).toEqual([]);
    expect(await inspect.lrange(keys.dlq, 0, -1)).toEqual([]);
  });

  it('changes nothing on a dry run of replay and purge, but reports what it would do', async () => {
    const id = await failedRow();
    const pending = await insertPending(db.sql);
    await sendToDeadLetters(db.sql, queue, [id]);
    const before = await rowOf(db.sql, id);

    expect(await replayDeadLetters(db.sql, queue, [id, pending.id], true)).toEqual({ replayed: [id], skipped: [pending.id] });
    expect(await purgeDeadLetters(queue, true)).toEqual([id]);

    expect(await rowOf(db.sql, id)).toEqual(before);
    expect(await inspect.lrange(keys.dlq, 0, -1)).toEqual([id]);
    expect(await inspect.llen(keys.queue)).toBe(0);
  });

  it('purge empties the DLQ list and leaves the rows FAILED', async () => {
    const a = await failedRow();
    const b = await failedRow();
    await sendToDeadLetters(db.sql, queue, [a, b]);
    await queue.deadLetter([a]);
    expect((await purgeDeadLetters(queue, false)).sort()).toEqual([a, b].sort());
    expect(await inspect.llen(keys.dlq)).toBe(0);
    expect((await rowOf(db.sql, a)).status).toBe('FAILED');
    expect((await rowOf(db.sql, b)).status).toBe('FAILED');
  });

  it('dropOldestDeadLetters removes exactly the entries read, keeping one pushed after the read', async () => {
    const [a, b, late] = [await failedRow(), await failedRow(), await failedRow()];
    await queue.deadLetter([a, b]);
    const read = await queue.deadLetters();
    await queue.deadLetter([late]);
    await queue.dropOldestDeadLetters(read.length);
    expect(await inspect.lrange(keys.dlq, 0, -1)).toEqual([late]);
  });
});
