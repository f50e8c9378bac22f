import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../internal/platform/config.ts';
import { listInbox } from '../../internal/repository/inbox.ts';
import { insertInboxItem } from '../support/inboxItems.ts';
import { deleteExpiredNotifications } from '../../internal/repository/retention.ts';
import { RetentionCleaner } from '../../internal/worker/maintenance/retentionCleaner.ts';
import { createTestDatabase, type TestDatabase } from '../support/testEnvironment.ts';
import { rowOf } from './helpers.ts';

describe('retention of finished notifications', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    await db.sql`truncate notifications, notification_attempts, idempotency_keys, inbox_items, inbox_counters`;
  });

  function cleaner(retentionDays?: number): RetentionCleaner {
    return new RetentionCleaner({ sql: db.sql, retentionDays });
  }

  /** A notification in `status` last changed `daysAgo` days ago, with one finished attempt. */
  async function aged(status: string, daysAgo: number): Promise<string> {
    const id = randomUUID();
    const processing = status === 'PROCESSING';
    await db.sql`
      insert into notifications (id, user_id, type, body, status, attempt, sent_at, locked_by, claimed_at, lease_expires_at,
                                 created_at, updated_at)
      values (${id}, 'ret-user', 'IN_APP', 'b', ${status}, 1,
              ${status === 'SENT' ? db.sql`now()` : null},
              ${processing ? 'w-1' : null}, ${processing ? db.sql`now()` : null}, ${processing ? db.sql`now() + interval '1 hour'` : null},
              now() - make_interval(days => ${daysAgo + 1}), now() - make_interval(days => ${daysAgo}))`;
    await db.sql`
      insert into notification_attempts (notification_id, attempt, worker_id, started_at, outcome)
      values (${id}, 1, 'w-0', now() - make_interval(days => ${daysAgo}), 'RETRY')`;
    return id;
  }

  async function exists(id: string): Promise<boolean> {
    return (await db.sql`select 1 from notifications where id = ${id}`).length === 1;
  }
  async function attemptCount(id: string): Promise<number> {
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from notification_attempts where notification_id = ${id}`;
    return row!.n;
  }

  it('deletes SENT, FAILED and SKIPPED rows past the retention period with their attempts and keys', async () => {
    const old = [await aged('SENT', 31), await aged('FAILED', 45), await aged('SKIPPED', 400)];
    await db.sql`insert into idempotency_keys (owner, key, request_hash, notification_id) values ('no-api-key', 'k-old', 'h', ${old[0]!})`;

    expect(await cleaner(30).run()).toEqual({ deleted: 3 });
    for (const id of old) {
      expect(await exists(id)).toBe(false);
      expect(await attemptCount(id)).toBe(0);
    }
    expect(await db.sql`select key from idempotency_keys`).toEqual([]);
  });

  it('never deletes PENDING or PROCESSING rows, however old, nor finished rows younger than the period', async () => {
    const kept = [await aged('PENDING', 90), await aged('PROCESSING', 90), await aged('SENT', 29), await aged('FAILED', 1)];
    const gone = await aged('SENT', 31);
    expect((await cleaner(30).run()).deleted).toBe(1);
    expect(await exists(gone)).toBe(false);
    for (const id of kept) {
      expect(await exists(id)).toBe(true);
      expect(await attemptCount(id)).toBe(1);
    }
    expect((await rowOf(db.sql, kept[1]!)).status).toBe('PROCESSING');
  });

  it('keeps everything with RETENTION_DAYS=0 (and by default in a cleaner given none)', async () => {
    const ancient = await aged('SENT', 10_000);
    expect((await cleaner(0).run()).deleted).toBe(0);
    expect((await cleaner().run()).deleted).toBe(0);
    expect(await exists(ancient)).toBe(true);
  });

  it('deletes in batches of 1,000, a few per run, oldest first', async () => {
    const count = 6500;
    await db.sql`
      insert into notifications (id, user_id, type, body, status, sent_at, updated_at)
      select gen_random_uuid(), 'bulk', 'IN_APP', 'b', 'SENT', now(), now() - interval '40 days' - n * interval '1 minute'
      from generate_series(1, ${count}) as n`;
    const [youngestOld] = await db.sql<{ id: string }[]>`select id from notifications order by updated_at desc limit 1`;

    // One statement takes exactly the batch it is given, oldest first.
    expect(await deleteExpiredNotifications(db.sql, 30, 1000)).toBe(1000);
    const [oldest] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from notifications where updated_at < now() - interval '40 days' - 5500.5 * interval '1 minute'`;
    expect(oldest!.n).toBe(0);

    // A run does a bounded share (5 batches); the next one carries on.
    expect((await cleaner(30).run()).deleted).toBe(5000);
    expect(await exists(youngestOld!.id)).toBe(true);
    expect((await cleaner(30).run()).deleted).toBe(500);
    expect(await exists(youngestOld!.id)).toBe(false);
  });

  it('skips rows another transaction holds instead of waiting for them', async () => {
    const held = await aged('FAILED', 60);
    const free = await aged('FAILED', 61);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // A replay that has the row locked, as `resetForReplay` would mid-statement.
    const holder = db.sql.begin(async (tx) => {
      await tx`select id from notifications where id = ${held} for update`;
      locked();
      await released;
    });
    await isLocked;
    try {
      const started = Date.now();
      expect(await deleteExpiredNotifications(db.sql, 30, 1000)).toBe(1);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await exists(free)).toBe(false);
    } finally {
      release();
      await holder;
    }
    expect(await exists(held)).toBe(true);
  });

  it("leaves the user's inbox item when its IN_APP notification is deleted: read state, seq and text stay", async () => {
    const id = await aged('SENT', 31);
    await insertInboxItem(db.sql, await rowOf(db.sql, id));
    await db.sql`update inbox_items set read_at = now() where notification_id = ${id}`;
    const [before] = await listInbox(db.sql, 'ret-user', { limit: 10 });

    expect((await cleaner(30).run()).deleted).toBe(1);
    expect(await exists(id)).toBe(false);
    const after = await listInbox(db.sql, 'ret-user', { limit: 10 });
    expect(after).toEqual([before]);
    expect(after[0]).toMatchObject({ notification_id: id, seq: 1, body: 'b' });
    expect(after[0]!.read_at).not.toBeNull();
  });

  it('reads RETENTION_DAYS: 30 by default, 0 allowed, a negative or fractional value refused by name', () => {
    expect(parseConfig({}).RETENTION_DAYS).toBe(30);
    expect(parseConfig({ RETENTION_DAYS: '0' }).RETENTION_DAYS).toBe(0);
    expect(() => parseConfig({ RETENTION_DAYS: '-1' })).toThrow(/RETENTION_DAYS/);
    expect(() => parseConfig({ RETENTION_DAYS: '1.5' })).toThrow(/RETENTION_DAYS/);
  });
});
