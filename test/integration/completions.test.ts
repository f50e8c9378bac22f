import { describe, expect, it } from 'vitest';
import { claimBatch, claimKey, releaseClaim, type Claim } from '../../internal/repository/claims.ts';
import { markSentMany, recordFailure, type Failure } from '../../internal/repository/completions.ts';
import { CompletionBatcher } from '../../internal/worker/completionBatcher.ts';
import { claimOne } from '../support/claims.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { attemptsOf, insertPending, rowOf } from './helpers.ts';

const LEASE_MS = 30_000;

function failure(overrides: Partial<Failure> = {}): Failure {
  return { reason: 'receiver answered 503', permanent: false, maxRetries: 3, retryDelayMs: 0, ...overrides };
}

describe('notification lifecycle in PostgreSQL', () => {
  const db = useTestDatabase();
  /** Room for 20 claimers at once. */
  const wide = useDatabasePool(db, 20);

  /** A notification delivered by an attempt (an IN_APP one is delivered by its claim, never PROCESSING). */
  function pending() {
    return insertPending(db.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
  }

  async function claim(id: string, workerId = 'worker-a'): Promise<Claim> {
    const row = await claimOne(db.sql, id, workerId, LEASE_MS);
    expect(row).toBeDefined();
    return { id, attempt: row!.attempt, workerId };
  }

  /** Records the attempt SENT as a worker does, through a completion batcher. */
  function complete(c: Claim): Promise<boolean> {
    return new CompletionBatcher(db.sql).complete(c);
  }

  async function expireLease(id: string): Promise<void> {
    await db.sql`update notifications set lease_expires_at = now() - interval '1 second' where id = ${id}`;
  }

  describe('claiming one notification', () => {
    it('gives a row to exactly one of 20 concurrent claimers', async () => {
      const { id } = await pending();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => claimOne(wide.sql, id, `worker-${i}`, LEASE_MS)),
      );
      const winners = results.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      const row = await rowOf(db.sql, id);
      expect(row.status).toBe('PROCESSING');
      expect(row.attempt).toBe(1);
      expect(row.locked_by).toBe(winners[0]!.locked_by);
      expect(winners[0]!.attempt).toBe(1);
    });

    it('sets a lease of leaseMs from now', async () => {
      const { id } = await pending();
      await claimOne(db.sql, id, 'worker-a', 45_000);
      const [lease] = await db.sql<{ seconds: number }[]>`
        select extract(epoch from (lease_expires_at - claimed_at))::float8 as seconds from notifications where id = ${id}`;
      expect(lease!.seconds).toBeCloseTo(45, 3);
    });

    it('does not claim a row whose available_at is in the future', async () => {
      const { id } = await pending();
      await db.sql`update notifications set available_at = now() + interval '1 hour' where id = ${id}`;
      expect(await claimOne(db.sql, id, 'worker-a', LEASE_MS)).toBeUndefined();
      const row = await rowOf(db.sql, id);
      expect(row.status).toBe('PENDING');
      expect(row.attempt).toBe(0);
      expect(row.locked_by).toBeNull();
    });

    it.each(['SENT', 'FAILED'] as const)('does not claim a %s row', async (status) => {
      const { id } = await pending();
      await db.sql`update notifications set status = ${status}, sent_at = now() where id = ${id}`;
      expect(await claimOne(db.sql, id, 'worker-a', LEASE_MS)).toBeUndefined();
      expect((await rowOf(db.sql, id)).status).toBe(status);
    });

    it('does not claim a row another worker holds', async () => {
      const { id } = await pending();
      await claim(id, 'worker-a');
      expect(await claimOne(db.sql, id, 'worker-b', LEASE_MS)).toBeUndefined();
      expect((await rowOf(db.sql, id)).locked_by).toBe('worker-a');
    });

    it('returns undefined for an id that is not stored', async () => {
      expect(await claimOne(db.sql, '00000000-0000-4000-8000-000000000000', 'worker-a', LEASE_MS)).toBeUndefined();
    });
  });

  describe('claiming a batch', () => {
    it('never gives one row to two of 10 workers claiming overlapping batches at once', async () => {
      const ids = (await Promise.all(Array.from({ length: 60 }, () => pending()))).map((r) => r.id);
      // Each worker claims a different shuffled, overlapping half of the rows, all at the same time.
      const batches = Array.from({ length: 10 }, () => [...ids].sort(() => Math.random() - 0.5).slice(0, 30));
      const results = await Promise.all(batches.map(async (batch, i) => (await claimBatch(wide.sql, batch, `worker-${i}`, LEASE_MS, ['IN_APP'])).claimed));

      const claimed = results.flatMap((rows, i) => rows.map((row) => ({ id: row.id, workerId: `worker-${i}`, attempt: row.attempt })));
      expect(new Set(claimed.map((c) => c.id)).size).toBe(claimed.length);
      for (const [i, rows] of results.entries()) for (const row of rows) expect(batches[i]).toContain(row.id);
      expect(claimed.every((c) => c.attempt === 1)).toBe(true);
      const inDb = await db.sql<{ id: string; locked_by: string }[]>`
        select id, locked_by from notifications where id = any(${ids}::uuid[]) and status = 'PROCESSING'`;
      expect(new Map(inDb.map((r) => [r.id, r.locked_by]))).toEqual(new Map(claimed.map((c) => [c.id, c.workerId])));
    });

    it('claims only the claimable rows of a batch and leaves the rest as they were', async () => {
      const ready = await pending();
      const taken = await pending();
      await claim(taken.id, 'worker-other');
      const waiting = await pending();
      await db.sql`update notifications set available_at = now() + interval '1 hour' where id = ${waiting.id}`;
      const unknown = '00000000-0000-4000-8000-000000000001';

      const { claimed: rows } = await claimBatch(db.sql, [taken.id, ready.id, waiting.id, unknown, ready.id], 'worker-a', LEASE_MS, ['IN_APP']);
      expect(rows.map((r) => [r.id, r.attempt, r.locked_by])).toEqual([[ready.id, 1, 'worker-a']]);
      expect(await rowOf(db.sql, taken.id)).toMatchObject({ status: 'PROCESSING', locked_by: 'worker-other', attempt: 1 });
      expect(await rowOf(db.sql, waiting.id)).toMatchObject({ status: 'PENDING', attempt: 0 });
    });
  });

  describe('markSentMany (a batch of completions)', () => {
    it('completes the live claims of a batch, reports the stale one, and leaves the newer attempt alone', async () => {
      const live = await Promise.all([pending(), pending()]);
      const liveClaims = await Promise.all(live.map((r) => claim(r.id, 'worker-a')));
      const { id: staleId } = await pending();
      const stale = await claim(staleId, 'worker-a');
      await expireLease(staleId);
      await recordFailure(db.sql, stale, failure({ reason: 'lease expired', outcome: 'LEASE_EXPIRED' }));
      const newer = await claim(staleId, 'worker-new');
      const before = await rowOf(db.sql, staleId);

      const recorded = await markSentMany(db.sql, [liveClaims[0]!, stale, liveClaims[1]!]);

      expect(recorded).toEqual(new Set(liveClaims.map(claimKey)));
      for (const c of liveClaims) {
        expect((await rowOf(db.sql, c.id)).status).toBe('SENT');
        expect(await attemptsOf(db.sql, c.id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'worker-a', error: null }]);
      }
      expect(await rowOf(db.sql, staleId)).toEqual(before);
      expect((await attemptsOf(db.sql, staleId)).map((a) => a.outcome)).toEqual(['LEASE_EXPIRED']);

      expect(await markSentMany(db.sql, [newer])).toEqual(new Set([claimKey(newer)]));
    });

    it('through the batcher, tells each concurrent caller whether its own claim still held, in one write', async () => {
      const rows = await Promise.all(Array.from({ length: 5 }, () => pending()));
      const claims = await Promise.all(rows.map((r) => claim(r.id, 'worker-a')));
      await complete(claims[2]!); // already completed: a second completion is stale
      const batcher = new CompletionBatcher(db.sql);

      const answers = await Promise.all(claims.map((c) => batcher.complete(c)));

      expect(answers).toEqual([true, true, false, true, true]);
      // One transaction for the four recorded: now(), hence sent_at, is the same within a transaction.
      const sentAt = await db.sql<{ t: string }[]>`
        select distinct sent_at::text as t from notifications where id = any(${claims.filter((_, i) => i !== 2).map((c) => c.id)}::uuid[])`;
      expect(sentAt).toHaveLength(1);
      for (const c of claims) expect((await attemptsOf(db.sql, c.id)).map((a) => a.outcome)).toEqual(['SENT']);
    });
  });

  describe('completing one attempt', () => {
    it('marks the claimed attempt SENT and logs it', async () => {
      const { id } = await pending();
      const c = await claim(id);
      expect(await complete(c)).toBe(true);
      const row = await rowOf(db.sql, id);
      expect(row).toMatchObject({ status: 'SENT', locked_by: null, lease_expires_at: null, error_reason: null, retry_count: 0 });
      expect(row.sent_at).not.toBeNull();
      expect(await attemptsOf(db.sql, id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'worker-a', error: null }]);
    });

    it('returns false for a second completion of the same claim and logs nothing more', async () => {
      const { id } = await pending();
      const c = await claim(id);
      await complete(c);
      expect(await complete(c)).toBe(false);
      expect(await recordFailure(db.sql, c, failure())).toBeUndefined();
      expect((await rowOf(db.sql, id)).status).toBe('SENT');
      expect(await attemptsOf(db.sql, id)).toHaveLength(1);
    });
  });

  describe('fencing a claim whose lease ran out', () => {
    it('drops the stale worker\'s completion after another worker took over', async () => {
      const { id } = await pending();
      const first = await claim(id, 'worker-old');
      await expireLease(id);

      // What maintenance does with an expired claim, then the retry being claimed by someone else.
      const rescued = await recordFailure(db.sql, first, failure({ reason: 'lease expired', outcome: 'LEASE_EXPIRED' }));
      expect(rescued).toBe('PENDING');
      const second = await claim(id, 'worker-new');
      expect(second.attempt).toBe(2);
      const before = await rowOf(db.sql, id);

      expect(await complete(first)).toBe(false);
      expect(await recordFailure(db.sql, first, failure({ permanent: true }))).toBeUndefined();
      expect(await releaseClaim(db.sql, first)).toBe(false);

      const after = await rowOf(db.sql, id);
      expect(after).toEqual(before);
      expect(after).toMatchObject({ status: 'PROCESSING', attempt: 2, locked_by: 'worker-new', retry_count: 1 });
      expect(await attemptsOf(db.sql, id)).toEqual([
        { attempt: 1, outcome: 'LEASE_EXPIRED', worker_id: 'worker-old', error: 'lease expired' },
      ]);

      expect(await complete(second)).toBe(true);
      expect((await rowOf(db.sql, id)).status).toBe('SENT');
      expect((await attemptsOf(db.sql, id)).map((a) => a.outcome)).toEqual(['LEASE_EXPIRED', 'SENT']);
    });
  });

  describe('recordFailure', () => {
    it('counts each failure, goes back to PENDING while retries remain, then FAILED at MAX_RETRIES', async () => {
      const { id } = await pending();

      for (let n = 1; n <= 2; n++) {
        const c = await claim(id);
        expect(await recordFailure(db.sql, c, failure({ reason: `failure ${n}` }))).toBe('PENDING');
        const row = await rowOf(db.sql, id);
        expect(row).toMatchObject({ status: 'PENDING', retry_count: n, error_reason: `failure ${n}`, queued_at: null, locked_by: null, lease_expires_at: null });
      }
      const last = await claim(id);
      expect(await recordFailure(db.sql, last, failure({ reason: 'failure 3' }))).toBe('FAILED');
      const row = await rowOf(db.sql, id);
      expect(row).toMatchObject({ status: 'FAILED', retry_count: 3, error_reason: 'failure 3', dead_lettered_at: null, locked_by: null, lease_expires_at: null });

      expect(await attemptsOf(db.sql, id)).toEqual([
        { attempt: 1, outcome: 'RETRY', worker_id: 'worker-a', error: 'failure 1' },
        { attempt: 2, outcome: 'RETRY', worker_id: 'worker-a', error: 'failure 2' },
        { attempt: 3, outcome: 'FAILED', worker_id: 'worker-a', error: 'failure 3' },
      ]);
      expect(await claimOne(db.sql, id, 'worker-a', LEASE_MS)).toBeUndefined();
    });

    it('makes the retry wait retryDelayMs before it can be claimed again', async () => {
      const { id } = await pending();
      const c = await claim(id);
      await recordFailure(db.sql, c, failure({ retryDelayMs: 60_000 }));
      const [wait] = await db.sql<{ seconds: number }[]>`
        select extract(epoch from (available_at - updated_at))::float8 as seconds from notifications where id = ${id}`;
      expect(wait!.seconds).toBeCloseTo(60, 3);
      expect(await claimOne(db.sql, id, 'worker-b', LEASE_MS)).toBeUndefined();
    });

    it('fails a permanent failure at once, whatever retries remain', async () => {
      const { id } = await pending();
      const c = await claim(id);
      expect(await recordFailure(db.sql, c, failure({ permanent: true, reason: 'webhook answered 404', maxRetries: 10 }))).toBe('FAILED');
      expect(await rowOf(db.sql, id)).toMatchObject({ status: 'FAILED', retry_count: 1, error_reason: 'webhook answered 404' });
      expect(await attemptsOf(db.sql, id)).toEqual([{ attempt: 1, outcome: 'FAILED', worker_id: 'worker-a', error: 'webhook answered 404' }]);
    });

    it('records a lease expiry that still has retries left as LEASE_EXPIRED, once the lease has run out', async () => {
      const { id } = await pending();
      const c = await claim(id);
      expect(await recordFailure(db.sql, c, failure({ outcome: 'LEASE_EXPIRED', reason: 'lease expired' }))).toBeUndefined();
      await db.sql`update notifications set lease_expires_at = now() - interval '1 second' where id = ${id}`;
      expect(await recordFailure(db.sql, c, failure({ outcome: 'LEASE_EXPIRED', reason: 'lease expired' }))).toBe('PENDING');
      expect((await attemptsOf(db.sql, id)).map((a) => a.outcome)).toEqual(['LEASE_EXPIRED']);
    });

    it('returns undefined and changes nothing for a row that is not PROCESSING', async () => {
      const { id } = await pending();
      const before = await rowOf(db.sql, id);
      expect(await recordFailure(db.sql, { id, attempt: 0, workerId: 'w' }, failure())).toBeUndefined();
      expect(await rowOf(db.sql, id)).toEqual(before);
      expect(await attemptsOf(db.sql, id)).toEqual([]);
    });
  });

  describe('releaseClaim', () => {
    it('hands the row back PENDING, due now and unqueued, without counting a failure', async () => {
      const { id } = await pending();
      const c = await claim(id, 'worker-stopping');
      expect(await releaseClaim(db.sql, c)).toBe(true);
      const row = await rowOf(db.sql, id);
      expect(row).toMatchObject({ status: 'PENDING', retry_count: 0, queued_at: null, locked_by: null, lease_expires_at: null });
      const [due] = await db.sql<{ due: boolean }[]>`select available_at <= now() as due from notifications where id = ${id}`;
      expect(due!.due).toBe(true);
      expect(await attemptsOf(db.sql, id)).toEqual([{ attempt: 1, outcome: 'RELEASED', worker_id: 'worker-stopping', error: null }]);

      expect(await releaseClaim(db.sql, c)).toBe(false);
      const again = await claim(id, 'worker-next');
      expect(again.attempt).toBe(2);
    });
  });

  describe('the status column', () => {
    it('refuses a status other than PENDING, PROCESSING, SENT or FAILED with a CHECK violation (SQLSTATE 23514)', async () => {
      const { id } = await pending();
      const err = await db.sql`update notifications set status = 'BOGUS' where id = ${id}`.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: '23514', constraint_name: expect.stringMatching(/status/) });
      expect((await rowOf(db.sql, id)).status).toBe('PENDING');
    });
  });
});
