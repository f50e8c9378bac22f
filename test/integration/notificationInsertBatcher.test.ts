import { describe, expect, it } from 'vitest';
import { NotificationInsertBatcher } from '../../internal/service/notificationInsertBatcher.ts';
import { connectDatabase } from '../../internal/platform/database.ts';
import { runWithDeadline } from '../../internal/platform/deadline.ts';
import { UnavailableError } from '../../internal/domain/errors.ts';
import type { NotificationJson, NotificationRow } from '../../internal/domain/notification.ts';
import { NotificationQueue } from '../../internal/queue/notificationQueue.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { testQueueKeys } from '../support/testEnvironment.ts';
import { waitFor } from '../support/waitFor.ts';
import { buildApi, closedPort, newNotification, silentLogger } from './helpers.ts';

describe('group commit of creates without an Idempotency-Key', () => {
  const db = useTestDatabase();
  /** The batchers' pool, apart from the one the test holds locks and cancels backends with. */
  const pool = useDatabasePool(db, 5);
  const scope = useQueueScope();

  function newBatcher(): { batcher: NotificationInsertBatcher; queue: NotificationQueue } {
    const queue = new NotificationQueue(scope.redis, testQueueKeys());
    return { batcher: new NotificationInsertBatcher(pool.sql, queue, silentLogger()), queue };
  }

  async function storedIds(ids: string[]): Promise<string[]> {
    const rows = await db.sql<{ id: string }[]>`select id from notifications where id = any(${ids}::uuid[])`;
    return rows.map((r) => r.id).sort();
  }

  /** Holds an ACCESS EXCLUSIVE lock on notifications in a transaction of its own until `release()`. */
  async function lockNotifications(): Promise<{ release(): Promise<void> }> {
    const holder = await db.sql.reserve();
    await holder`begin`;
    await holder`lock table notifications in access exclusive mode`;
    return {
      async release() {
        await holder`rollback`;
        holder.release();
      },
    };
  }

  /** Resolves once a backend of the test database waits on a lock; returns its pid. */
  async function waitingOnLock(): Promise<number> {
    return waitFor('an insert to wait on the lock', async () => {
      const [row] = await db.sql<{ pid: number }[]>`
        select pid from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query ilike '%insert into notifications%'`;
      return row?.pid;
    });
  }

  it('stores many concurrent POSTs in few transactions, each answered with its own row', async () => {
    const api = await buildApi(db);
    try {
      const count = 200;
      // The requests come over sockets, one after another; the first batch is held on a lock while
      // the rest arrive, so they wait together, as a busy API's do.
      const lock = await lockNotifications();
      const sent = Promise.all(
        Array.from({ length: count }, (_, i) =>
          api.app.request('/notifications', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ user_id: `batch-user-${i}`, type: 'IN_APP', body: `body ${i}`, data: { i } }),
          }),
        ),
      );
      await waitingOnLock();
      await new Promise((r) => setTimeout(r, 500));
      await lock.release();
      const responses = await sent;
      const answers = await Promise.all(responses.map(async (res) => ({ status: res.status, json: (await res.json()) as NotificationJson })));
      const ids = answers.map((a) => a.json.id);
      answers.forEach((a, i) => {
        expect(a.status).toBe(201);
        expect(a.json).toMatchObject({ user_id: `batch-user-${i}`, body: `body ${i}`, data: { i }, status: 'PENDING' });
      });
      expect(new Set(ids).size).toBe(count);

      const rows = await db.sql<(NotificationRow & { tx: string })[]>`
        select *, xmin::text as tx from notifications where id = any(${ids}::uuid[])`;
      expect(rows).toHaveLength(count);
      const byId = new Map(rows.map((r) => [r.id, r]));
      answers.forEach((a, i) => expect(byId.get(a.json.id)).toMatchObject({ user_id: `batch-user-${i}`, body: `body ${i}` }));
      // Rows written by one transaction share its xmin: 200 requests, a handful of transactions.
      const transactions = new Set(rows.map((r) => r.tx)).size;
      expect(transactions).toBeLessThanOrEqual(10);
      expect((await api.redis.lrange(api.keys.queue, 0, -1)).sort()).toEqual([...ids].sort());
    } finally {
      await api.close();
    }
  });

  it('drops the row of a request whose deadline passed before COMMIT and stores the rest of its batch', async () => {
    const { batcher, queue } = newBatcher();
    const late = newNotification({ user_id: 'late' });
    const patient = [newNotification({ user_id: 'patient-1' }), newNotification({ user_id: 'patient-2' })];
    const lock = await lockNotifications();
    let stillWaiting: Promise<NotificationRow[]>;
    try {
      // Created in one turn of the event loop, so they share a batch.
      const refused = runWithDeadline(300, (beforeCommit) => batcher.create(late, beforeCommit));
      stillWaiting = Promise.all(patient.map((n) => runWithDeadline(10_000, (beforeCommit) => batcher.create(n, beforeCommit))));
      stillWaiting.catch(() => {});
      await waitingOnLock();
      await expect(refused).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      await lock.release();
    }
    const rows = await stillWaiting;
    expect(rows.map((r) => r.id)).toEqual(patient.map((n) => n.id));
    expect(await storedIds([late.id, ...patient.map((n) => n.id)])).toEqual(patient.map((n) => n.id).sort());
    expect((await scope.redis.lrange(queue.keys.queue, 0, -1)).sort()).toEqual(patient.map((n) => n.id).sort());
  });

  it('rejects every caller of a batch with UnavailableError when PostgreSQL fails mid-transaction, and stores nothing', async () => {
    const { batcher, queue } = newBatcher();
    const notifications = [newNotification(), newNotification(), newNotification()];
    const lock = await lockNotifications();
    let results: PromiseSettledResult<NotificationRow>[];
    try {
      const attempts = Promise.allSettled(
        notifications.map((n) => runWithDeadline(10_000, (beforeCommit) => batcher.create(n, beforeCommit))),
      );
      // The server cancels the batch's INSERT (SQLSTATE 57014, as on an operator's or a shutdown's
      // intervention). Not a dropped connection: postgres.js 3.4.9 throws an uncaught TypeError when
      // a connection drops inside sql.begin, whichever path wrote.
      const pid = await waitingOnLock();
      await db.sql`select pg_cancel_backend(${pid})`;
      results = await attempts;
    } finally {
      await lock.release();
    }
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(UnavailableError);
    }
    expect(await storedIds(notifications.map((n) => n.id))).toEqual([]);
    expect(await scope.redis.llen(queue.keys.queue)).toBe(0);
  });

  it('rejects every caller of a batch with UnavailableError when PostgreSQL is unreachable', async () => {
    const unreachable = connectDatabase(`postgres://postgres@127.0.0.1:${await closedPort()}/x`, { max: 1, connectTimeoutSeconds: 2 });
    const queue = new NotificationQueue(scope.redis, testQueueKeys());
    const batcher = new NotificationInsertBatcher(unreachable, queue, silentLogger());
    try {
      const results = await Promise.allSettled(
        [newNotification(), newNotification()].map((n) => runWithDeadline(5000, (beforeCommit) => batcher.create(n, beforeCommit))),
      );
      for (const result of results) {
        expect(result.status).toBe('rejected');
        expect((result as PromiseRejectedResult).reason).toMatchObject({ dependency: 'postgres' });
        expect((result as PromiseRejectedResult).reason).toBeInstanceOf(UnavailableError);
      }
      expect(await scope.redis.llen(queue.keys.queue)).toBe(0);
    } finally {
      await unreachable.end({ timeout: 1 });
    }
  });
});
