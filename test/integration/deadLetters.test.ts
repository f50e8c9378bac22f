import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters, sendToDeadLetters } from '../../internal/service/deadLetters.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { insertPending, rowOf } from './helpers.ts';

describe('dead letters', () => {
  const db = useTestDatabase();
  const scope = useQueueScope();

  async function failedRow(reason = 'webhook answered 500'): Promise<string> {
    const { id } = await insertPending(db.sql);
    await db.sql`update notifications set status = 'FAILED', retry_count = 3, error_reason = ${reason}, queued_at = null where id = ${id}`;
    return id;
  }

  it('sendToDeadLetters pushes ids to the DLQ list and marks the rows', async () => {
    const a = await failedRow();
    const b = await failedRow();
    await sendToDeadLetters(db.sql, scope.queue, [a, b]);
    expect((await scope.redis.lrange(scope.keys.dlq, 0, -1)).sort()).toEqual([a, b].sort());
    expect((await rowOf(db.sql, a)).dead_lettered_at).not.toBeNull();
    expect((await rowOf(db.sql, b)).dead_lettered_at).not.toBeNull();
  });

  it('lists dead letters oldest first, once each, with their rows, and flags unknown ids', async () => {
    const first = await failedRow('first');
    const second = await failedRow('second');
    const unknown = randomUUID();
    await scope.queue.deadLetter([first]);
    await scope.queue.deadLetter([second]);
    await scope.queue.deadLetter([first]);
    await scope.queue.deadLetter([unknown]);
    const letters = await listDeadLetters(db.sql, scope.queue);
    expect(letters.map((l) => l.id)).toEqual([first, second, unknown]);
    expect(letters[0]!.notification?.error_reason).toBe('first');
    expect(letters[1]!.notification?.status).toBe('FAILED');
    expect(letters[2]!.notification).toBeUndefined();
  });

  it('replays a FAILED notification: PENDING, retry_count 0, queued, gone from the DLQ', async () => {
    const id = await failedRow();
    await sendToDeadLetters(db.sql, scope.queue, [id]);
    await scope.queue.deadLetter([id]);

    const result = await replayDeadLetters(db.sql, scope.queue, [id, id], false);
    expect(result).toEqual({ replayed: [id], skipped: [] });
    const row = await rowOf(db.sql, id);
    expect(row).toMatchObject({ status: 'PENDING', retry_count: 0, error_reason: null, dead_lettered_at: null });
    expect(row.queued_at).not.toBeNull();
    expect(await scope.redis.lrange(scope.keys.queue, 0, -1)).toEqual([id]);
    expect(await scope.redis.lrange(scope.keys.dlq, 0, -1)).toEqual([]);
  });

  it('skips ids that are not FAILED and drops their stale DLQ entries', async () => {
    const pending = await insertPending(db.sql);
    const unknown = randomUUID();
    await scope.queue.deadLetter([pending.id, unknown]);
    const result = await replayDeadLetters(db.sql, scope.queue, [pending.id, unknown], false);
    expect(result).toEqual({ replayed: [], skipped: [pending.id, unknown] });
    expect((await rowOf(db.sql, pending.id)).status).toBe('PENDING');
    expect(await scope.redis.lrange(scope.keys.queue, 0, -1)).toEqual([]);
    expect(await scope.redis.lrange(scope.keys.dlq, 0, -1)).toEqual([]);
  });

  it('changes nothing on a dry run of replay and purge, but reports what it would do', async () => {
    const id = await failedRow();
    const pending = await insertPending(db.sql);
    await sendToDeadLetters(db.sql, scope.queue, [id]);
    const before = await rowOf(db.sql, id);

    expect(await replayDeadLetters(db.sql, scope.queue, [id, pending.id], true)).toEqual({ replayed: [id], skipped: [pending.id] });
    expect(await purgeDeadLetters(scope.queue, true)).toEqual([id]);

    expect(await rowOf(db.sql, id)).toEqual(before);
    expect(await scope.redis.lrange(scope.keys.dlq, 0, -1)).toEqual([id]);
    expect(await scope.redis.llen(scope.keys.queue)).toBe(0);
  });

  it('purge empties the DLQ list and leaves the rows FAILED', async () => {
    const a = await failedRow();
    const b = await failedRow();
    await sendToDeadLetters(db.sql, scope.queue, [a, b]);
    await scope.queue.deadLetter([a]);
    expect((await purgeDeadLetters(scope.queue, false)).sort()).toEqual([a, b].sort());
    expect(await scope.redis.llen(scope.keys.dlq)).toBe(0);
    expect((await rowOf(db.sql, a)).status).toBe('FAILED');
    expect((await rowOf(db.sql, b)).status).toBe('FAILED');
  });

  it('dropOldestDeadLetters removes exactly the entries read, keeping one pushed after the read', async () => {
    const [a, b, late] = [await failedRow(), await failedRow(), await failedRow()];
    await scope.queue.deadLetter([a, b]);
    const read = await scope.queue.deadLetters();
    await scope.queue.deadLetter([late]);
    await scope.queue.dropOldestDeadLetters(read.length);
    expect(await scope.redis.lrange(scope.keys.dlq, 0, -1)).toEqual([late]);
  });
});
