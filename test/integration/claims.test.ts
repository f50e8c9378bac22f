import { describe, expect, it } from 'vitest';
import { claimBatch } from '../../internal/repository/claims.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { insertInboxItem } from '../support/inboxItems.ts';
import { attemptsOf, insertPending, rowOf } from './helpers.ts';

const LEASE_MS = 30_000;
const IN_APP = ['IN_APP'] as const;

describe('claimBatch: claiming, and delivering to inboxes in the claim', () => {
  const db = useTestDatabase();
  /** Room for 20 claimers at once. */
  const wide = useDatabasePool(db, 20);

  async function inboxOf(userId: string): Promise<{ notification_id: string; seq: number }[]> {
    return db.sql`select notification_id, seq from inbox_items where user_id = ${userId} order by seq`;
  }

  it('delivers IN_APP rows (SENT, inbox item, attempt) and leases the others, in one statement', async () => {
    const first = await insertPending(db.sql, { user_id: 'claim-u1', title: 'T1', data: { n: 1 } });
    const second = await insertPending(db.sql, { user_id: 'claim-u1', title: 'T2' });
    const hook = await insertPending(db.sql, { user_id: 'claim-u1', type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
    const done = await insertPending(db.sql, { user_id: 'claim-u1' });
    await db.sql`update notifications set status = 'SENT', sent_at = now() where id = ${done.id}`;

    const batch = await claimBatch(db.sql, [hook.id, second.id, first.id, done.id], 'worker-c', LEASE_MS, IN_APP);

    expect(batch.claimed.map((r) => r.id)).toEqual([hook.id]);
    expect(batch.claimed[0]).toMatchObject({ status: 'PROCESSING', attempt: 1, locked_by: 'worker-c', opted_out: false });
    expect(await rowOf(db.sql, hook.id)).toMatchObject({ status: 'PROCESSING', locked_by: 'worker-c' });

    expect(new Set(batch.inboxed.map((d) => d.row.id))).toEqual(new Set([first.id, second.id]));
    for (const { id } of [first, second]) {
      const row = await rowOf(db.sql, id);
      expect(row).toMatchObject({ status: 'SENT', attempt: 1, locked_by: null, lease_expires_at: null, error_reason: null });
      expect(row.sent_at).not.toBeNull();
      expect(await attemptsOf(db.sql, id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'worker-c', error: null }]);
    }
    // The user's items take seqs in the order the notifications were created.
    expect(await inboxOf('claim-u1')).toEqual([
      { notification_id: first.id, seq: 1 },
      { notification_id: second.id, seq: 2 },
    ]);
    const announced = batch.inboxed.find((d) => d.row.id === first.id)!.item;
    expect(announced).toMatchObject({ notification_id: first.id, user_id: 'claim-u1', seq: 1, title: 'T1', data: { n: 1 }, read_at: null });
    expect(await rowOf(db.sql, done.id)).toMatchObject({ status: 'SENT', attempt: 0 });
  });

  it('leaves an opted-out IN_APP row to the worker (PROCESSING, opted_out), but delivers a critical one', async () => {
    await db.sql`insert into channel_opt_outs (user_id, channel) values ('claim-quiet', 'IN_APP')`;
    const plain = await insertPending(db.sql, { user_id: 'claim-quiet' });
    const critical = await insertPending(db.sql, { user_id: 'claim-quiet', critical: true });

    const batch = await claimBatch(db.sql, [plain.id, critical.id], 'worker-c', LEASE_MS, IN_APP);

    expect(batch.claimed.map((r) => [r.id, r.status, r.opted_out])).toEqual([[plain.id, 'PROCESSING', true]]);
    expect(batch.inboxed.map((d) => d.row.id)).toEqual([critical.id]);
    expect(await inboxOf('claim-quiet')).toEqual([{ notification_id: critical.id, seq: 1 }]);
  });

  it('claims everything, IN_APP included, when no channel is delivered in the claim', async () => {
    const row = await insertPending(db.sql, { user_id: 'claim-plain' });
    const batch = await claimBatch(db.sql, [row.id], 'worker-c', LEASE_MS, []);
    expect(batch.inboxed).toEqual([]);
    expect(batch.claimed.map((r) => [r.id, r.status])).toEqual([[row.id, 'PROCESSING']]);
    expect(await inboxOf('claim-plain')).toEqual([]);
  });

  it('does not store an item twice, nor skip a seq, for a notification an earlier attempt put in the inbox', async () => {
    const row = await insertPending(db.sql, { user_id: 'claim-again' });
    await insertInboxItem(db.sql, row);
    const batch = await claimBatch(db.sql, [row.id], 'worker-c', LEASE_MS, IN_APP);
    expect(batch.inboxed).toEqual([{ row: expect.objectContaining({ id: row.id }), item: undefined }]);
    expect((await rowOf(db.sql, row.id)).status).toBe('SENT');
    expect(await inboxOf('claim-again')).toEqual([{ notification_id: row.id, seq: 1 }]);
    const next = await insertPending(db.sql, { user_id: 'claim-again' });
    await claimBatch(db.sql, [next.id], 'worker-c', LEASE_MS, IN_APP);
    expect((await inboxOf('claim-again')).map((i) => i.seq)).toEqual([1, 2]);
  });

  it('delivers each row once when 10 workers claim overlapping batches at once, and each user gets seqs 1..n', async () => {
    const users = ['race-a', 'race-b', 'race-c', 'race-d'];
    const rows = await Promise.all(Array.from({ length: 120 }, (_, i) => insertPending(db.sql, { user_id: users[i % users.length]! })));
    const ids = rows.map((r) => r.id);
    // Each worker claims a different shuffled, overlapping half of the rows, all at the same time.
    const batches = Array.from({ length: 10 }, () => [...ids].sort(() => Math.random() - 0.5).slice(0, 60));
    const results = await Promise.all(batches.map((batch, i) => claimBatch(wide.sql, batch, `worker-${i}`, LEASE_MS, IN_APP)));

    const delivered = results.flatMap((r) => r.inboxed.map((d) => d.row.id));
    expect(results.every((r) => r.claimed.length === 0)).toBe(true);
    expect(new Set(delivered).size).toBe(delivered.length);
    const claimedIds = new Set(batches.flat());
    expect(new Set(delivered)).toEqual(claimedIds);
    const [sent] = await db.sql<{ n: number; attempts: number }[]>`
      select count(*)::int as n,
             (select count(*)::int from notification_attempts where notification_id = any(${ids}::uuid[])) as attempts
      from notifications where id = any(${ids}::uuid[]) and status = 'SENT'`;
    expect(sent).toEqual({ n: claimedIds.size, attempts: claimedIds.size });
    for (const user of users) {
      const items = await inboxOf(user);
      expect(items.map((i) => i.seq)).toEqual(items.map((_, k) => k + 1));
    }
    const [items] = await db.sql<{ n: number }[]>`select count(*)::int as n from inbox_items where user_id like 'race-%'`;
    expect(items!.n).toBe(claimedIds.size);
  });
});
