import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createChannels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import type { NotificationQueue } from '../../internal/queue/notificationQueue.ts';
import { claimRunningFanout, insertTopicFanout, type NewFanout } from '../../internal/repository/fanouts.ts';
import { renewClaims, renewFanoutLease } from '../../internal/repository/leaseRenewals.ts';
import { claimKey } from '../../internal/repository/claims.ts';
import { recordFailure } from '../../internal/repository/completions.ts';
import { Maintainer } from '../../internal/worker/maintenance/maintainer.ts';
import { maintenanceJobs } from '../../internal/worker/maintenance/maintenanceJobs.ts';
import { claimOne } from '../support/claims.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { useInProcessWorkers } from '../support/inProcessWorkers.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';
import { attemptsOf, insertPending, rowOf } from './helpers.ts';

const LEASE_MS = 6000;
/** Longer than a lease: without renewals, a stalled recording outlives its claim. */
const STALL_SECONDS = 8;
const policy = { maxRetries: 5, baseMs: 50, maxMs: 100 };

describe('lease renewal', () => {
  const db = useTestDatabase();
  /** Room for two workers' claims, stalled recordings and maintenance at once. */
  const pool = useDatabasePool(db, 30);

  describe('renewClaims', () => {
    it("extends this worker's attempt, and never another worker's or an older attempt", async () => {
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
      const row = await claimOne(pool.sql, id, 'renewer', LEASE_MS);
      const claim = { id, attempt: row!.attempt };
      const leaseBefore = (await rowOf(pool.sql, id)).lease_expires_at!;

      const other = await renewClaims(pool.sql, 'someone-else', [claim], 60_000);
      const stale = await renewClaims(pool.sql, 'renewer', [{ id, attempt: claim.attempt - 1 }], 60_000);
      expect(other.renewed.size + stale.renewed.size).toBe(0);
      expect([...other.lost, ...stale.lost]).toEqual([claimKey(claim), claimKey({ id, attempt: claim.attempt - 1 })]);
      expect((await rowOf(pool.sql, id)).lease_expires_at).toEqual(leaseBefore);

      const own = await renewClaims(pool.sql, 'renewer', [claim], 60_000);
      expect([...own.renewed]).toEqual([claimKey(claim)]);
      expect(own.lost.size).toBe(0);
      const renewed = await rowOf(pool.sql, id);
      expect(renewed.lease_expires_at!.getTime()).toBeGreaterThan(Date.now() + 50_000);
      expect(renewed).toMatchObject({ status: 'PROCESSING', attempt: claim.attempt, locked_by: 'renewer' });
    });

    it('reports a finished claim lost, and neither waits for nor loses a row another statement has locked', async () => {
      const done = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
      const busy = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
      const doneClaim = { id: done.id, attempt: (await claimOne(pool.sql, done.id, 'renewer', LEASE_MS))!.attempt };
      const busyClaim = { id: busy.id, attempt: (await claimOne(pool.sql, busy.id, 'renewer', LEASE_MS))!.attempt };
      await pool.sql`update notifications set status = 'SENT', sent_at = now(), lease_expires_at = null where id = ${done.id}`;

      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const lockTaken = new Promise<void>((r) => (locked = r));
      const holder = pool.sql.begin(async (tx) => {
        await tx`select 1 from notifications where id = ${busy.id} for update`;
        locked();
        await released;
      });
      try {
        await lockTaken;
        const renewal = await renewClaims(pool.sql, 'renewer', [doneClaim, busyClaim], 60_000);
        expect([...renewal.lost]).toEqual([claimKey(doneClaim)]);
        expect(renewal.renewed.size).toBe(0);
      } finally {
        release();
        await holder;
      }
      expect([...(await renewClaims(pool.sql, 'renewer', [busyClaim], 60_000)).renewed]).toEqual([claimKey(busyClaim)]);
    });

    it('leaves a lease that ran out to the rescuer, whose take-over in turn spares a lease renewed meanwhile', async () => {
      const expired = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
      const renewed = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: 'http://127.0.0.1:9/' });
      const expiredClaim = { id: expired.id, attempt: (await claimOne(pool.sql, expired.id, 'renewer', LEASE_MS))!.attempt };
      const renewedClaim = { id: renewed.id, attempt: (await claimOne(pool.sql, renewed.id, 'renewer', LEASE_MS))!.attempt };
      await pool.sql`update notifications set lease_expires_at = now() - interval '1 second' where id = ${expired.id}`;

      const renewal = await renewClaims(pool.sql, 'renewer', [expiredClaim, renewedClaim], 60_000);
      expect([...renewal.renewed]).toEqual([claimKey(renewedClaim)]);
      expect(renewal.lost.size).toBe(0);

      const takeOver = (claim: { id: string; attempt: number }) =>
        recordFailure(pool.sql, { ...claim, workerId: 'renewer' }, { reason: 'lease expired', permanent: false, maxRetries: 3, retryDelayMs: 0, outcome: 'LEASE_EXPIRED' });
      expect(await takeOver(renewedClaim)).toBeUndefined();
      expect((await rowOf(pool.sql, renewed.id)).status).toBe('PROCESSING');
      expect(await takeOver(expiredClaim)).toBe('PENDING');
    });
  });

  describe('renewFanoutLease', () => {
    it("extends this worker's hold of a fan-out, never another worker's or an older attempt, and leaves one that ran out to be taken over", async () => {
      const fanout: NewFanout = { id: randomUUID(), topic: 'renewed', type: 'IN_APP', title: 'T', body: 'B', html: null, data: null, critical: false };
      await insertTopicFanout(pool.sql, fanout, undefined, () => {});
      const held = (await claimRunningFanout(pool.sql, 'runner-a', LEASE_MS))!;
      const leaseOf = async () => (await pool.sql<{ lease_expires_at: Date }[]>`select lease_expires_at from fanouts where id = ${fanout.id}`)[0]!.lease_expires_at;
      const before = await leaseOf();

      expect(await renewFanoutLease(pool.sql, 'runner-b', held, 60_000)).toBe('lost');
      expect(await renewFanoutLease(pool.sql, 'runner-a', { ...held, attempt: held.attempt - 1 }, 60_000)).toBe('lost');
      expect(await leaseOf()).toEqual(before);
      expect(await renewFanoutLease(pool.sql, 'runner-a', held, 60_000)).toBe('renewed');
      expect((await leaseOf()).getTime()).toBeGreaterThan(Date.now() + 50_000);

      await pool.sql`update fanouts set lease_expires_at = now() - interval '1 second' where id = ${fanout.id}`;
      expect(await renewFanoutLease(pool.sql, 'runner-a', held, 60_000)).toBe('busy');
      expect(await claimRunningFanout(pool.sql, 'runner-b', LEASE_MS)).toEqual({ id: fanout.id, attempt: held.attempt + 1 });
      expect(await renewFanoutLease(pool.sql, 'runner-a', held, 60_000)).toBe('lost');
    });
  });

  describe('a worker whose recordings stall past its lease', () => {
    const queues = useQueueScope();
    const scope = useTestScope();
    const workers = useInProcessWorkers();

    /** A client of `max` connections of its own, closed after the test. */
    function ownClient(max: number): Sql {
      const sql = connectDatabase(db.url, { max });
      scope.defer(() => sql.end({ timeout: 1 }));
      return sql;
    }

    /**
     * Makes every statement that records deliveries SENT (`markSentMany`, the only UPDATE of
     * notifications over an `unnest` that sets SENT) sleep before it touches a row, as one waiting
     * behind a busy PostgreSQL does: it holds no row lock while the claims' leases run down.
     */
    async function stallRecordingsOfSent(): Promise<void> {
      await pool.sql.unsafe(`
        create function stall_sent() returns trigger language plpgsql as $$
        begin
          if current_query() like '%unnest(%' and current_query() like '%set status = ''SENT''%' then
            perform pg_sleep(${STALL_SECONDS});
          end if;
          return null;
        end $$;
        create trigger stall_sent before update on notifications
          for each statement execute function stall_sent();`);
      scope.defer(async () => {
        await pool.sql.unsafe('drop trigger stall_sent on notifications; drop function stall_sent()');
      });
    }

    /** The workers' warnings, shown when the test fails: they tell a lost lease from a late renewal. */
    const warnings: string[] = [];

    /** A worker as `cmd/worker.ts` runs one: delivering, renewing on its own connection, and taking part in maintenance. */
    function startWorker(queue: NotificationQueue, workerId: string, webhookTimeoutMs = 1000): void {
      const config = parseConfig({
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_TIMEOUT_MS: String(webhookTimeoutMs),
        LEASE_MS: String(LEASE_MS),
        SWEEP_INTERVAL_MS: '200',
        LOG_LEVEL: 'silent',
      });
      const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
      workers.start({ sql: pool.sql, renewals: ownClient(1), queue, channels: createChannels(config), policy, leaseMs: LEASE_MS, concurrency: 6, logger, workerId });
      const maintainer = new Maintainer({ jobs: maintenanceJobs({ sql: pool.sql, queue, policy, config }), leaderSession: ownClient(1), logger });
      maintainer.start();
      scope.defer(() => maintainer.stop());
    }

    it('keeps its claims, so no webhook is delivered twice', { timeout: 120_000 }, async () => {
      const receiver = await scope.receiver(() => 200);
      const queue = queues.queue;
      await stallRecordingsOfSent();
      const rows = await Promise.all(Array.from({ length: 12 }, () => insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url })));
      const ids = rows.map((r) => r.id);
      await queue.push(ids);
      startWorker(queue, 'stalled-a');
      startWorker(queue, 'stalled-b');

      await waitFor(
        'every notification finished',
        async () => {
          const [row] = await pool.sql<{ n: number }[]>`
            select count(*)::int as n from notifications where id = any(${ids}::uuid[]) and status in ('SENT', 'FAILED')`;
          return row!.n === ids.length;
        },
        90_000,
      );
      const deliveries = ids.map((id) => receiver.forId(id).length);
      expect(deliveries, warnings.join('')).toEqual(ids.map(() => 1));
      const statuses = await pool.sql<{ status: string }[]>`select status from notifications where id = any(${ids}::uuid[])`;
      expect(statuses.map((r) => r.status)).toEqual(ids.map(() => 'SENT'));
    });

    it('aborts a delivery under way once a renewal finds its claim taken over, and records nothing over the newer attempt', { timeout: 60_000 }, async () => {
      const receiver = await scope.receiver(() => 'hang');
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      await queues.queue.push([id]);
      startWorker(queues.queue, 'overtaken', LEASE_MS - 1000);
      await waitFor('the webhook under way', () => receiver.forId(id).length === 1);

      // Another worker's attempt takes the claim over (as after a rescue and a new claim).
      await pool.sql`
        update notifications set attempt = attempt + 1, locked_by = 'newer', lease_expires_at = now() + interval '1 minute'
        where id = ${id}`;
      const request = await waitFor('the webhook abandoned', () => receiver.forId(id)[0]!.abandonedAt !== undefined && receiver.forId(id)[0]!);
      // Within a renewal's interval (a third of the lease, and its jitter), well before the webhook's own time limit.
      expect(request.abandonedAt! - request.at).toBeLessThan(LEASE_MS / 3 * 1.2 + 1000);
      await new Promise((r) => setTimeout(r, 500));
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, locked_by: 'newer' });
      expect(await attemptsOf(pool.sql, id)).toEqual([]);
    });
  });
});
