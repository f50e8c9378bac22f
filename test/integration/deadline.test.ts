import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectDatabase } from '../../internal/platform/database.ts';
import { runWithDeadline } from '../../internal/platform/deadline.ts';
import { UnavailableError } from '../../internal/domain/errors.ts';
import { idempotencyOwner } from '../../internal/repository/idempotencyKeys.ts';
import { insertNotification, type InsertResult } from '../../internal/repository/notifications.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { lockTable } from '../support/tableLock.ts';
import { waitFor } from '../support/waitFor.ts';
import { buildApi, closedPort, newNotification } from './helpers.ts';

const db = useTestDatabase();

async function stored(id: string): Promise<boolean> {
  const rows = await db.sql`select 1 from notifications where id = ${id}`;
  return rows.length === 1;
}

describe('runWithDeadline against PostgreSQL', () => {
  const lockNotifications = () => lockTable(db.sql, 'notifications');

  it('commits the write when PostgreSQL answers in time', async () => {
    const notification = newNotification();
    const result = await runWithDeadline(5000, (beforeCommit) => insertNotification(db.sql, notification, undefined, beforeCommit));
    expect(result.created).toBe(true);
    expect(result.row.id).toBe(notification.id);
    expect(await stored(notification.id)).toBe(true);
  });

  it('gives up with UnavailableError once the deadline passes, and the abandoned write never commits', async () => {
    const notification = newNotification();
    const lock = await lockNotifications();
    let work: Promise<InsertResult> | undefined;
    try {
      const attempt = runWithDeadline(300, (beforeCommit) => {
        work = insertNotification(db.sql, notification, undefined, beforeCommit);
        return work;
      });
      await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
      await expect(attempt).rejects.toMatchObject({ dependency: 'postgres' });
    } finally {
      await lock.release();
    }
    // The insert now proceeds; its beforeCommit must throw so the transaction rolls back.
    await expect(work!).rejects.toThrow(/stopped waiting/);
    expect(await stored(notification.id)).toBe(false);
    const [count] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where id = ${notification.id}`;
    expect(count!.n).toBe(0);
  });

  it('rolls back the idempotency key of an abandoned write too', async () => {
    const notification = newNotification();
    const key = randomUUID();
    const lock = await lockNotifications();
    let work: Promise<InsertResult> | undefined;
    try {
      await expect(
        runWithDeadline(300, (beforeCommit) => {
          work = insertNotification(db.sql, notification, { owner: idempotencyOwner(null), key, requestHash: 'h' }, beforeCommit);
          return work;
        }),
      ).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      await lock.release();
    }
    await expect(work!).rejects.toThrow(/stopped waiting/);
    expect(await stored(notification.id)).toBe(false);
    expect(await db.sql`select 1 from idempotency_keys where key = ${key}`).toHaveLength(0);
  });

  it('waits for COMMIT once beforeCommit has passed, even past the deadline', async () => {
    const id = randomUUID();
    const deadlineMs = 100;
    const started = Date.now();
    const result = await runWithDeadline(deadlineMs, (beforeCommit) => {
      // Passed before the deadline can fire, however slowly PostgreSQL answers what follows.
      beforeCommit();
      return db.sql.begin(async (tx) => {
        await tx`insert into notifications (id, user_id, type, body) values (${id}, 'u', 'IN_APP', 'b')`;
        await tx`select pg_sleep(0.5)`;
        return 'committed';
      });
    });
    expect(result).toBe('committed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(await stored(id)).toBe(true);
  });

  it('passes on a statement error as it is, not as unavailability', async () => {
    const notification = newNotification();
    await insertNotification(db.sql, notification, undefined, () => {});
    const err = await runWithDeadline(5000, (beforeCommit) => insertNotification(db.sql, notification, undefined, beforeCommit)).catch(
      (e: unknown) => e,
    );
    expect(err).not.toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ code: '23505' });
  });

  it('reports an unreachable PostgreSQL as UnavailableError', async () => {
    const port = await closedPort();
    const unreachable = connectDatabase(`postgres://postgres@127.0.0.1:${port}/x`, { max: 1, connectTimeoutSeconds: 2 });
    try {
      const err = await runWithDeadline(5000, () => unreachable`select 1`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err).toMatchObject({ dependency: 'postgres' });
    } finally {
      await unreachable.end({ timeout: 1 });
    }
  });
});

describe('POST /notifications while PostgreSQL is stuck', () => {
  it('answers 503 and the refused notification does not land after the lock is released', async () => {
    const api = await buildApi(db, { requestTimeoutMs: 300 });
    const holder = await db.sql.reserve();
    try {
      await api.sql`select 1`;
      await holder`begin`;
      await holder`lock table notifications in access exclusive mode`;
      const res = await api.app.request('/notifications', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'stuck-1' },
        body: JSON.stringify({ user_id: 'stuck-user', type: 'IN_APP', body: 'b' }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unavailable');
      await holder`rollback`;

      // Wait until none of the API's connections is inside a statement or transaction any more.
      await waitFor('the abandoned insert to finish', async () => {
        const [busy] = await holder<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and state is not null and state <> 'idle'`;
        return busy!.n === 0;
      });
      expect(await db.sql`select 1 from notifications where user_id = 'stuck-user'`).toHaveLength(0);
      expect(await db.sql`select 1 from idempotency_keys where key = 'stuck-1'`).toHaveLength(0);
      expect(await api.redis.llen(api.keys.queue)).toBe(0);

      const retried = await api.app.request('/notifications', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'stuck-1' },
        body: JSON.stringify({ user_id: 'stuck-user', type: 'IN_APP', body: 'b' }),
      });
      expect(retried.status).toBe(201);
      expect(await db.sql`select 1 from notifications where user_id = 'stuck-user'`).toHaveLength(1);
    } finally {
      holder.release();
      await api.close();
    }
  });
});
