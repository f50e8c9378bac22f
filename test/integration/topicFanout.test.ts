import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import type { Channel, NotificationRow } from '../../internal/domain/notification.ts';
import {
  advanceTopicFanout,
  claimRunningFanout,
  insertTopicFanout,
  releaseFanout,
  type FanoutClaim,
  type FanoutProgress,
  type FanoutRow,
  type NewFanout,
} from '../../internal/repository/fanouts.ts';
import { addTopicSubscribers, removeTopicSubscribers } from '../../internal/repository/topics.ts';
import { FanoutRunner } from '../../internal/worker/fanoutRunner.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { silentLogger } from './helpers.ts';

const LEASE_MS = 30_000;

describe('topic fan-out', () => {
  const db = useTestDatabase();
  const scope = useQueueScope();
  // Runners take any RUNNING fan-out, so each test starts without any.
  beforeEach(async () => {
    await db.sql`truncate notifications, notification_attempts, fanouts, idempotency_keys, topic_subscriptions, recipients, push_subscriptions cascade`;
  });

  /** `u-00001` … : ids whose text order is their number's order. */
  function userIds(count: number, prefix = 'u'): string[] {
    return Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(5, '0')}`);
  }

  async function createFanout(topic: string, fields: Partial<NewFanout> = {}): Promise<FanoutRow> {
    const fanout: NewFanout = { id: randomUUID(), topic, type: 'IN_APP', title: 'T', body: 'B', html: null, data: null, critical: false, ...fields };
    const { fanout: row } = await insertTopicFanout(db.sql, fanout, undefined, () => {});
    return row;
  }

  async function fanoutRow(id: string): Promise<FanoutRow> {
    const [row] = await db.sql<FanoutRow[]>`select * from fanouts where id = ${id}`;
    return row!;
  }

  async function notificationsOf(fanoutId: string): Promise<NotificationRow[]> {
    return db.sql<NotificationRow[]>`select * from notifications where fanout_id = ${fanoutId} order by user_id`;
  }

  async function claim(workerId: string, sql: Sql = db.sql): Promise<FanoutClaim> {
    const claimed = await claimRunningFanout(sql, workerId, LEASE_MS);
    expect(claimed).toBeDefined();
    return claimed!;
  }

  function runner(workerId: string, batchSize: number, sql: Sql = db.sql): FanoutRunner {
    return new FanoutRunner({ sql, renewals: sql, queue: scope.queue, workerId, leaseMs: LEASE_MS, intervalMs: 1000, logger: silentLogger(), batchSize });
  }

  async function queued(): Promise<string[]> {
    return scope.redis.lrange(scope.keys.queue, 0, -1);
  }

  /** Expects every PENDING notification of the fan-outs on the queue exactly once, and nothing else. */
  async function expectQueuedExactlyPending(fanoutIds: string[]): Promise<void> {
    const pending = await db.sql<{ id: string }[]>`
      select id from notifications where fanout_id = any(${fanoutIds}::uuid[]) and status = 'PENDING' order by id`;
    expect([...(await queued())].sort()).toEqual(pending.map((p) => p.id));
  }

  describe('advanceTopicFanout', () => {
    it('creates a notification for each of 2,500 subscribers in batches of 1,000, moving the cursor in user_id order, then is DONE', async () => {
      const users = userIds(2500);
      // Subscribed in reverse order: the batches follow user_id order, not subscription order.
      await addTopicSubscribers(db.sql, 'big', [...users].reverse(), () => {});
      const fanout = await createFanout('big');
      const held = await claim('worker-1');
      expect(held).toEqual({ id: fanout.id, attempt: 1 });

      const cursors: (string | null)[] = [];
      const progress: FanoutProgress[] = [];
      for (let batch = 1; batch <= 3; batch++) {
        progress.push(await advanceTopicFanout(db.sql, held, 1000, LEASE_MS));
        const row = await fanoutRow(fanout.id);
        cursors.push(row.cursor);
        const [count] = await db.sql<{ n: number; last: string }[]>`
          select count(*)::int as n, max(user_id) as last from notifications where fanout_id = ${fanout.id}`;
        expect(count!.n).toBe(Math.min(batch * 1000, 2500));
        expect(row.created_count).toBe(count!.n);
        expect(count!.last).toBe(row.cursor);
        if (batch < 3) {
          expect(row).toMatchObject({ status: 'RUNNING', locked_by: 'worker-1', finished_at: null });
          expect(row.lease_expires_at!.getTime()).toBeGreaterThan(Date.now());
        }
      }
      expect(cursors).toEqual(['u-01000', 'u-02000', 'u-02500']);
      expect(progress.map((p) => [p.status, p.created, p.queued.length])).toEqual([
        ['RUNNING', 1000, 1000],
        ['RUNNING', 1000, 1000],
        ['DONE', 500, 500],
      ]);

      const done = await fanoutRow(fanout.id);
      expect(done).toMatchObject({ status: 'DONE', created_count: 2500, locked_by: null, lease_expires_at: null });
      expect(done.finished_at).not.toBeNull();
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => r.user_id)).toEqual(users);
      expect(new Set(progress.flatMap((p) => p.queued))).toEqual(new Set(rows.map((r) => r.id)));

      // A DONE fan-out creates nothing more, even for the holder of its last claim.
      expect(await advanceTopicFanout(db.sql, held, 1000, LEASE_MS)).toEqual({ status: undefined, queued: [], created: 0 });
      expect(await claimRunningFanout(db.sql, 'worker-2', LEASE_MS)).toBeUndefined();
      expect((await notificationsOf(fanout.id)).length).toBe(2500);
    });

    it('is DONE after an empty batch when the subscribers fill the last batch exactly', async () => {
      await addTopicSubscribers(db.sql, 'even', userIds(20), () => {});
      const fanout = await createFanout('even');
      const held = await claim('worker-1');
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await advanceTopicFanout(db.sql, held, 10, LEASE_MS)).status);
      expect(statuses).toEqual(['RUNNING', 'RUNNING', 'DONE']);
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', cursor: 'u-00020', created_count: 20 });
    });

    it('copies the fan-out\'s content into each notification and addresses it from the profile', async () => {
      await addTopicSubscribers(db.sql, 'mail', ['ann', 'ben'], () => {});
      await db.sql`insert into recipients (user_id, email) values ('ann', 'ann@example.com'), ('ben', 'ben@example.com')`;
      const fanout = await createFanout('mail', { type: 'EMAIL', title: 'Digest', body: 'Text', html: '<p>Text</p>', data: { week: 7 }, critical: true });
      await advanceTopicFanout(db.sql, await claim('worker-1'), 10, LEASE_MS);
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => r.user_id)).toEqual(['ann', 'ben']);
      for (const row of rows) {
        expect(row).toMatchObject({
          type: 'EMAIL',
          title: 'Digest',
          body: 'Text',
          html: '<p>Text</p>',
          data: { week: 7 },
          critical: true,
          fanout_id: fanout.id,
          status: 'PENDING',
          recipient: `${row.user_id}@example.com`,
          retry_count: 0,
          attempt: 0,
        });
        expect(row.queued_at).not.toBeNull();
      }
    });

    it('creates nothing twice when a batch is redone after its cursor was lost: the (fanout_id, user_id) index refuses it', async () => {
      await addTopicSubscribers(db.sql, 'redo', userIds(30), () => {});
      const fanout = await createFanout('redo');
      const held = await claim('worker-1');
      const first = await advanceTopicFanout(db.sql, held, 10, LEASE_MS);
      expect(first.created).toBe(10);

      await db.sql`update fanouts set cursor = null where id = ${fanout.id}`;
      const redone = await advanceTopicFanout(db.sql, held, 10, LEASE_MS);
      expect(redone).toEqual({ status: 'RUNNING', queued: [], created: 0 });
      expect(await fanoutRow(fanout.id)).toMatchObject({ cursor: 'u-00010', created_count: 10 });

      let progress = redone;
      while (progress.status === 'RUNNING') progress = await advanceTopicFanout(db.sql, held, 10, LEASE_MS);
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => r.user_id)).toEqual(userIds(30));
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: 30 });
    });

    it('reaches only users subscribed at or before the fan-out was created', async () => {
      await addTopicSubscribers(db.sql, 'news', ['early-1', 'early-2', 'at-creation', 'left-before-run'], () => {});
      await addTopicSubscribers(db.sql, 'other-topic', ['elsewhere'], () => {});
      const fanout = await createFanout('news');
      // Subscribed in the same microsecond as the fan-out: still reached; one microsecond later: not.
      await db.sql`
        update topic_subscriptions set subscribed_at = (select created_at from fanouts where id = ${fanout.id})
        where topic = 'news' and user_id = 'at-creation'`;
      await db.sql`
        insert into topic_subscriptions (topic, user_id, subscribed_at)
        select 'news', 'just-after', created_at + interval '1 microsecond' from fanouts where id = ${fanout.id}`;
      await addTopicSubscribers(db.sql, 'news', ['late-1', 'a-late'], () => {});
      await removeTopicSubscribers(db.sql, 'news', ['left-before-run'], () => {});

      expect(await runner('worker-1', 2).runOnce()).toBe(3);
      expect((await notificationsOf(fanout.id)).map((r) => r.user_id)).toEqual(['at-creation', 'early-1', 'early-2']);
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: 3 });

      // A fan-out created now reaches them.
      const later = await createFanout('news');
      await runner('worker-1', 100).runOnce();
      expect((await notificationsOf(later.id)).map((r) => r.user_id)).toEqual(['a-late', 'at-creation', 'early-1', 'early-2', 'just-after', 'late-1']);
    });

    it.each<[Channel, string]>([
      ['EMAIL', 'email'],
      ['SMS', 'phone'],
      ['WEBHOOK', 'webhook_url'],
    ])('creates a %s for users with a %s and a SKIPPED row saying why for users without one, queuing only the PENDING ones', async (type, field) => {
      const address: Record<string, string> = { email: 'ok@example.com', phone: '+14155550100', webhook_url: 'https://hooks.example.com/ok' };
      await db.sql`insert into recipients ${db.sql({ user_id: 'has-address', [field]: address[field] })}`;
      // A profile with other addresses, but not this channel's.
      const other = field === 'email' ? { phone: '+14155550101' } : { email: 'other@example.com' };
      await db.sql`insert into recipients ${db.sql({ user_id: 'has-other', ...other })}`;
      await addTopicSubscribers(db.sql, 'mixed', ['has-address', 'has-other', 'no-profile'], () => {});
      const fanout = await createFanout('mixed', { type });

      expect(await runner('worker-1', 10).runOnce()).toBe(3);
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => [r.user_id, r.status, r.recipient, r.error_reason])).toEqual([
        ['has-address', 'PENDING', address[field], null],
        ['has-other', 'SKIPPED', null, `not sent: user has no ${type} address on file`],
        ['no-profile', 'SKIPPED', null, `not sent: user has no ${type} address on file`],
      ]);
      expect(rows.filter((r) => r.status === 'SKIPPED').every((r) => r.queued_at === null)).toBe(true);
      expect(await queued()).toEqual([rows[0]!.id]);
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: 3 });
    });

    it('creates a PUSH for users with a push subscription and SKIPS users without one', async () => {
      await db.sql`insert into push_subscriptions (user_id, endpoint, p256dh, auth) values ('subscribed', 'https://push.example/s', ${'B'.repeat(87)}, ${'A'.repeat(22)})`;
      await db.sql`insert into recipients (user_id, email) values ('mail-only', 'm@example.com')`;
      await addTopicSubscribers(db.sql, 'pushy', ['mail-only', 'subscribed'], () => {});
      const fanout = await createFanout('pushy', { type: 'PUSH' });
      await runner('worker-1', 10).runOnce();
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => [r.user_id, r.status, r.recipient, r.error_reason])).toEqual([
        ['mail-only', 'SKIPPED', null, 'not sent: user has no PUSH address on file'],
        ['subscribed', 'PENDING', null, null],
      ]);
      await expectQueuedExactlyPending([fanout.id]);
    });

    it('creates an IN_APP for every subscriber, profile or not', async () => {
      await addTopicSubscribers(db.sql, 'inbox', ['p', 'q'], () => {});
      const fanout = await createFanout('inbox', { type: 'IN_APP' });
      await runner('worker-1', 10).runOnce();
      expect((await notificationsOf(fanout.id)).map((r) => r.status)).toEqual(['PENDING', 'PENDING']);
    });
  });

  describe('claims', () => {
    it('creates nothing for a stale claim after another worker took the fan-out over, and leaves the new holder\'s hold alone', async () => {
      await addTopicSubscribers(db.sql, 'stale', userIds(25), () => {});
      const fanout = await createFanout('stale');
      const stale = await claim('worker-a');
      await db.sql`update fanouts set lease_expires_at = now() - interval '1 second' where id = ${fanout.id}`;
      const fresh = await claim('worker-b');
      expect(fresh).toEqual({ id: fanout.id, attempt: 2 });

      expect(await advanceTopicFanout(db.sql, stale, 10, LEASE_MS)).toEqual({ status: undefined, queued: [], created: 0 });
      await releaseFanout(db.sql, stale);
      expect(await notificationsOf(fanout.id)).toEqual([]);
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'RUNNING', cursor: null, created_count: 0, locked_by: 'worker-b', attempt: 2 });
      expect((await fanoutRow(fanout.id)).lease_expires_at).not.toBeNull();

      // While worker-b's lease holds, nobody else takes it.
      expect(await claimRunningFanout(db.sql, 'worker-c', LEASE_MS)).toBeUndefined();
      expect((await advanceTopicFanout(db.sql, fresh, 10, LEASE_MS)).created).toBe(10);
    });

    it('lets another worker carry on from the cursor after the holder died mid-way, creating each user once', async () => {
      await addTopicSubscribers(db.sql, 'resume', userIds(45), () => {});
      const fanout = await createFanout('resume');
      const dead = await claim('worker-died');
      await advanceTopicFanout(db.sql, dead, 10, LEASE_MS);
      await advanceTopicFanout(db.sql, dead, 10, LEASE_MS);
      // Its lease runs out.
      await db.sql`update fanouts set lease_expires_at = now() - interval '1 second' where id = ${fanout.id}`;

      expect(await runner('worker-2', 10).runOnce()).toBe(25);
      const rows = await notificationsOf(fanout.id);
      expect(rows.map((r) => r.user_id)).toEqual(userIds(45));
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: 45, attempt: 2 });
      expect(await advanceTopicFanout(db.sql, dead, 10, LEASE_MS)).toEqual({ status: undefined, queued: [], created: 0 });
    });

    it('lets another worker take a released fan-out at once', async () => {
      await addTopicSubscribers(db.sql, 'handover', userIds(5), () => {});
      const fanout = await createFanout('handover');
      const first = await claim('worker-a');
      expect(await claimRunningFanout(db.sql, 'worker-b', LEASE_MS)).toBeUndefined();
      await releaseFanout(db.sql, first);
      expect(await fanoutRow(fanout.id)).toMatchObject({ locked_by: null, lease_expires_at: null, status: 'RUNNING' });
      expect(await claim('worker-b')).toEqual({ id: fanout.id, attempt: 2 });
    });
  });

  describe('FanoutRunner', () => {
    it('creates 2,500 notifications once in batches of 1,000 and queues each PENDING id once, one LPUSH per batch', async () => {
      await addTopicSubscribers(db.sql, 'big', userIds(2500), () => {});
      const fanout = await createFanout('big');
      const lpush = vi.spyOn(scope.redis, 'lpush');
      try {
        expect(await runner('worker-1', 1000).runOnce()).toBe(2500);
        expect(lpush.mock.calls.map((call) => call.slice(1).length)).toEqual([1000, 1000, 500]);
      } finally {
        lpush.mockRestore();
      }
      expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', cursor: 'u-02500', created_count: 2500, locked_by: null });
      const [count] = await db.sql<{ n: number; users: number }[]>`
        select count(*)::int as n, count(distinct user_id)::int as users from notifications where fanout_id = ${fanout.id}`;
      expect(count).toEqual({ n: 2500, users: 2500 });
      await expectQueuedExactlyPending([fanout.id]);
      expect(await queued()).toHaveLength(2500);

      // Nothing is left to do.
      expect(await runner('worker-2', 1000).runOnce()).toBe(0);
      expect(await queued()).toHaveLength(2500);
    });

    it('works through several fan-outs with concurrent runners, creating each user once per fan-out', async () => {
      const sql = connectDatabase(db.url, { max: 12 });
      try {
        await addTopicSubscribers(sql, 'alpha', userIds(400, 'a'), () => {});
        await addTopicSubscribers(sql, 'beta', userIds(300, 'b'), () => {});
        const fanouts = [await createFanout('alpha'), await createFanout('beta'), await createFanout('alpha'), await createFanout('beta')];
        const created = await Promise.all(Array.from({ length: 6 }, (_, i) => runner(`worker-${i}`, 50, sql).runOnce()));
        expect(created.reduce((a, b) => a + b, 0)).toBe(1400);

        for (const fanout of fanouts) {
          const expected = fanout.topic === 'alpha' ? userIds(400, 'a') : userIds(300, 'b');
          expect((await notificationsOf(fanout.id)).map((r) => r.user_id)).toEqual(expected);
          expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: expected.length });
        }
        await expectQueuedExactlyPending(fanouts.map((f) => f.id));
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

    it('creates each user once when several holders of the same claim advance it at the same moment', async () => {
      const sql = connectDatabase(db.url, { max: 8 });
      try {
        await addTopicSubscribers(sql, 'contended', userIds(500), () => {});
        const fanout = await createFanout('contended');
        const held = await claim('worker-1', sql);
        const loops = Array.from({ length: 5 }, async () => {
          const mine: FanoutProgress[] = [];
          for (;;) {
            const progress = await advanceTopicFanout(sql, held, 40, LEASE_MS);
            mine.push(progress);
            if (progress.status !== 'RUNNING') return mine;
          }
        });
        const all = (await Promise.all(loops)).flat();
        expect(all.reduce((n, p) => n + p.created, 0)).toBe(500);
        const queuedIds = all.flatMap((p) => p.queued);
        expect(new Set(queuedIds).size).toBe(500);
        expect(queuedIds).toHaveLength(500);
        expect((await notificationsOf(fanout.id)).map((r) => r.user_id)).toEqual(userIds(500));
        expect(await fanoutRow(fanout.id)).toMatchObject({ status: 'DONE', created_count: 500 });
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });
});
