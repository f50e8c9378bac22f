import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import type { Redis } from '../../internal/platform/redis.ts';
import { claimOne } from '../support/claims.ts';
import { ClaimRescuer } from '../../internal/worker/maintenance/claimRescuer.ts';
import { DeadLetterRelister } from '../../internal/worker/maintenance/deadLetterRelister.ts';
import { DueRowScheduler } from '../../internal/worker/maintenance/dueRowScheduler.ts';
import { IdempotencyKeyCleaner } from '../../internal/worker/maintenance/idempotencyKeyCleaner.ts';
import type { MaintenanceJob } from '../../internal/worker/maintenance/maintenanceJob.ts';
import { connectTestRedis, createTestDatabase, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { attemptsOf, connectReadyRedis, insertPending, rowOf } from './helpers.ts';

const LEASE_MS = 30_000;
const policy = { maxRetries: 3, baseMs: 1000, maxMs: 1000 };

describe('maintenance jobs, one run each', () => {
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
  beforeEach(async () => {
    await db.sql`truncate notifications, notification_attempts, idempotency_keys, inbox_items`;
    keys = testQueueKeys();
    queue = new NotificationQueue(redis, keys);
  });

  function rescuer(sql: Sql = db.sql): ClaimRescuer {
    return new ClaimRescuer({ sql, queue, policy }, 1000);
  }
  function scheduler(sql: Sql = db.sql): DueRowScheduler {
    return new DueRowScheduler({ sql, queue, leaseMs: LEASE_MS, intervalMs: 1000 });
  }
  function relister(): DeadLetterRelister {
    return new DeadLetterRelister({ sql: db.sql, queue, leaseMs: LEASE_MS });
  }

  async function queued(): Promise<string[]> {
    return inspect.lrange(keys.queue, 0, -1);
  }
  async function deadLetters(): Promise<string[]> {
    return inspect.lrange(keys.dlq, 0, -1);
  }

  /**
   * Runs a new `job()` twice: the first run pushes `id` alone onto `list`, counts it under `counted`
   * and sets its `mark` column, leaving `notId`'s unset; the second pushes nothing, the mark keeping
   * the row off.
   */
  async function expectPushedOnce(
    job: () => MaintenanceJob,
    counted: string,
    list: () => Promise<string[]>,
    { id, notId, mark }: { id: string; notId: string; mark: 'queued_at' | 'dead_lettered_at' },
  ): Promise<void> {
    expect(await job().run()).toEqual({ [counted]: 1 });
    expect(await list()).toEqual([id]);
    expect((await rowOf(db.sql, id))[mark]).not.toBeNull();
    expect((await rowOf(db.sql, notId))[mark]).toBeNull();
    expect(await job().run()).toEqual({ [counted]: 0 });
    expect(await list()).toEqual([id]);
  }

  /** A notification claimed by a worker that died: its lease ran out a second ago. */
  async function claimedAndExpired(retryCount: number): Promise<string> {
    // A channel delivered by an attempt: an IN_APP notification is delivered by its claim.
    const { id } = await insertPending(db.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
    await db.sql`update notifications set retry_count = ${retryCount} where id = ${id}`;
    expect(await claimOne(db.sql, id, 'dead-worker', LEASE_MS)).toBeDefined();
    await db.sql`update notifications set lease_expires_at = now() - interval '1 second' where id = ${id}`;
    return id;
  }

  it('counts an expired claim as a failed attempt and schedules a retry', async () => {
    const id = await claimedAndExpired(0);
    expect(await rescuer().run()).toEqual({ rescued: 1 });
    const row = await rowOf(db.sql, id);
    expect(row).toMatchObject({ status: 'PENDING', retry_count: 1, locked_by: null, lease_expires_at: null, queued_at: null });
    expect(row.error_reason).toMatch(/lease expired.*dead-worker/);
    expect(await attemptsOf(db.sql, id)).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'LEASE_EXPIRED', worker_id: 'dead-worker' }),
    ]);
    expect(await deadLetters()).toEqual([]);
    const [wait] = await db.sql<{ ok: boolean }[]>`select available_at > now() as ok from notifications where id = ${id}`;
    expect(wait!.ok).toBe(true);
    expect(await queued()).not.toContain(id);
  });

  it('fails and dead-letters an expired claim that used its last retry', async () => {
    const id = await claimedAndExpired(policy.maxRetries - 1);
    expect(await rescuer().run()).toEqual({ rescued: 1 });
    const row = await rowOf(db.sql, id);
    expect(row).toMatchObject({ status: 'FAILED', retry_count: policy.maxRetries });
    expect(row.error_reason).toMatch(/lease expired/);
    expect(row.dead_lettered_at).not.toBeNull();
    expect(await deadLetters()).toEqual([id]);
    expect((await attemptsOf(db.sql, id)).map((a) => a.outcome)).toEqual(['FAILED']);
    expect(await queued()).not.toContain(id);
  });

  it('leaves a claim whose lease still holds alone', async () => {
    const { id } = await insertPending(db.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
    await claimOne(db.sql, id, 'live-worker', LEASE_MS);
    const before = await rowOf(db.sql, id);
    expect(await rescuer().run()).toEqual({ rescued: 0 });
    expect(await rowOf(db.sql, id)).toEqual(before);
  });

  it('queues due rows that were never queued and marks them queued', async () => {
    const due = await insertPending(db.sql);
    const notYetDue = await insertPending(db.sql);
    await db.sql`update notifications set queued_at = null where id in (${due.id}, ${notYetDue.id})`;
    await db.sql`update notifications set available_at = now() + interval '1 hour' where id = ${notYetDue.id}`;

    await expectPushedOnce(scheduler, 'queued', queued, { id: due.id, notId: notYetDue.id, mark: 'queued_at' });
  });

  it('queues again rows queued longer than a lease ago, but not freshly queued ones', async () => {
    const stale = await insertPending(db.sql);
    const fresh = await insertPending(db.sql);
    const almost = await insertPending(db.sql);
    await db.sql`update notifications set queued_at = now() - interval '31 seconds' where id = ${stale.id}`;
    await db.sql`update notifications set queued_at = now() - interval '25 seconds' where id = ${almost.id}`;

    expect(await scheduler().run()).toEqual({ queued: 1 });
    expect(await queued()).toEqual([stale.id]);
    const [requeued] = await db.sql<{ recent: boolean }[]>`
      select queued_at > now() - interval '5 seconds' as recent from notifications where id = ${stale.id}`;
    expect(requeued!.recent).toBe(true);
    expect(await queued()).not.toContain(fresh.id);
  });

  it('puts back, at the front of a long queue, a row the queue has passed by a lease, and leaves the rows still in line', async () => {
    const queuedAgo = async (seconds: number) => {
      const row = await insertPending(db.sql);
      await db.sql`update notifications set queued_at = now() - make_interval(secs => ${seconds}) where id = ${row.id}`;
      return row.id;
    };
    const lost = await queuedAgo(200);
    const oldestInLine = await queuedAgo(100);
    const inLine = await queuedAgo(110);
    const backlog = await Promise.all(Array.from({ length: 600 }, () => queuedAgo(90)));
    // The oldest entries still queued were queued 100 s and 90 s ago: the row queued 200 s ago was
    // popped and lost. The one queued 110 s ago is in line further back (its push came late, but by
    // less than a lease), and stays where it is.
    await queue.push([oldestInLine, ...backlog.slice(0, 50), inLine, ...backlog.slice(50)]);

    expect(await scheduler().run()).toEqual({ queued: 1 });
    expect(await queue.oldest(2)).toEqual([lost, oldestInLine]);
    expect(await inspect.llen(keys.queue)).toBe(backlog.length + 3);
    // Marked queued at the place it was put back in, so the next runs leave it alone while it waits there.
    const [marked] = await db.sql<{ same: boolean }[]>`
      select a.queued_at = b.queued_at as same from notifications a, notifications b where a.id = ${lost} and b.id = ${oldestInLine}`;
    expect(marked!.same).toBe(true);
    expect(await scheduler().run()).toEqual({ queued: 0 });

    // Redis loses the queue: every row queued more than a lease ago is put back, oldest first.
    await inspect.del(keys.queue);
    expect(await scheduler().run()).toEqual({ queued: backlog.length + 3 });
    const requeued = await queue.oldest(backlog.length + 3);
    expect(requeued[0]).toBe(inLine);
    expect(new Set(requeued.slice(1, 3))).toEqual(new Set([lost, oldestInLine]));
    expect(new Set(requeued.slice(3))).toEqual(new Set(backlog));
  });

  it('queues due never-queued rows even while the queue holds a backlog', async () => {
    const retry = await insertPending(db.sql);
    await db.sql`update notifications set queued_at = null where id = ${retry.id}`;
    await queue.push(Array.from({ length: 500 }, (_, i) => `backlog-${i}`));

    expect(await scheduler().run()).toEqual({ queued: 1 });
    expect(await queued()).toContain(retry.id);
  });

  it('never queues rows that are PROCESSING, SENT or FAILED', async () => {
    const processing = await insertPending(db.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
    await claimOne(db.sql, processing.id, 'w', LEASE_MS);
    const sent = await insertPending(db.sql);
    const failed = await insertPending(db.sql);
    await db.sql`update notifications set status = 'SENT', sent_at = now() where id = ${sent.id}`;
    await db.sql`update notifications set status = 'FAILED', dead_lettered_at = now() where id = ${failed.id}`;
    await db.sql`update notifications set queued_at = null, available_at = now() - interval '1 hour'`;

    expect(await scheduler().run()).toEqual({ queued: 0 });
    expect(await rescuer().run()).toEqual({ rescued: 0 });
    expect(await relister().run()).toEqual({ deadLettered: 0 });
    expect(await queued()).toEqual([]);
    expect(await deadLetters()).toEqual([]);
  });

  it('pushes FAILED rows missing from the dead-letter list and marks them, after a lease of grace', async () => {
    const missing = await insertPending(db.sql);
    const justFailed = await insertPending(db.sql);
    const alreadyThere = await insertPending(db.sql);
    await db.sql`update notifications set status = 'FAILED', retry_count = 3, error_reason = 'x'
                 where id in (${missing.id}, ${justFailed.id}, ${alreadyThere.id})`;
    await db.sql`update notifications set updated_at = now() - interval '1 minute' where id in (${missing.id}, ${alreadyThere.id})`;
    await db.sql`update notifications set dead_lettered_at = now() where id = ${alreadyThere.id}`;

    await expectPushedOnce(relister, 'deadLettered', deadLetters, { id: missing.id, notId: justFailed.id, mark: 'dead_lettered_at' });
  });

  it('forgets Idempotency-Keys older than 24 hours and keeps younger ones', async () => {
    const a = await insertPending(db.sql);
    const b = await insertPending(db.sql);
    const c = await insertPending(db.sql);
    await db.sql`insert into idempotency_keys (owner, key, request_hash, notification_id, created_at) values
      ('no-api-key', 'old', 'h', ${a.id}, now() - interval '25 hours'),
      ('no-api-key', 'almost-old', 'h', ${b.id}, now() - interval '23 hours'),
      ('no-api-key', 'new', 'h', ${c.id}, now())`;
    expect(await new IdempotencyKeyCleaner({ sql: db.sql }).run()).toEqual({ deleted: 1 });
    const keysLeft = await db.sql<{ key: string }[]>`select key from idempotency_keys order by key`;
    expect(keysLeft.map((k) => k.key)).toEqual(['almost-old', 'new']);
    // The key goes, the notification it created stays.
    const [stored] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where id = ${a.id}`;
    expect(stored!.n).toBe(1);
  });

  it('never pushes one row twice when two schedulers run at once (an old leader and its successor)', async () => {
    const rows = 1200;
    await db.sql`
      insert into notifications (id, user_id, type, body, queued_at, available_at)
      select gen_random_uuid(), 'bulk', 'IN_APP', 'b', null, now() - interval '1 second'
      from generate_series(1, ${rows})`;
    const otherSql = connectDatabase(db.url, { max: 2 });
    try {
      for (let round = 0; round < 3; round++) {
        keys = testQueueKeys();
        queue = new NotificationQueue(redis, keys);
        const [a, b] = await Promise.all([scheduler().run(), scheduler(otherSql).run()]);
        const ids = await queued();
        expect(ids).toHaveLength(rows);
        expect(new Set(ids).size).toBe(rows);
        expect(a.queued + b.queued).toBe(rows);
        const [unqueued] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where queued_at is null`;
        expect(unqueued!.n).toBe(0);
        await db.sql`update notifications set queued_at = null`;
      }
    } finally {
      await otherSql.end({ timeout: 5 });
    }
  });

  it('leaves an expired claim to exactly one of two concurrent rescuers', async () => {
    const id = await claimedAndExpired(policy.maxRetries - 1);
    const otherSql = connectDatabase(db.url, { max: 2 });
    try {
      await Promise.all([rescuer().run(), rescuer(otherSql).run()]);
    } finally {
      await otherSql.end({ timeout: 5 });
    }
    expect(await rowOf(db.sql, id)).toMatchObject({ status: 'FAILED', retry_count: policy.maxRetries });
    expect(await attemptsOf(db.sql, id)).toHaveLength(1);
    expect(await deadLetters()).toEqual([id]);
  });
});
