import { pino } from 'pino';
import postgres from 'postgres';
import { beforeAll, describe, expect, it } from 'vitest';
import { createChannels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { connectBlockingRedis } from '../../internal/platform/redis.ts';
import { CompletionBatcher } from '../../internal/worker/completionBatcher.ts';
import { deliverClaimed } from '../../internal/worker/deliveryAttempt.ts';
import type { Worker } from '../../internal/worker/worker.ts';
import { claimOne, deliverToInboxes } from '../support/claims.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { testQueueKeys, testRedisUrl } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';
import { useInProcessWorkers } from '../support/inProcessWorkers.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';
import { attemptsOf, closedPort, insertPending, rowOf, silentLogger } from './helpers.ts';

const LEASE_MS = 5000;
const policy = { maxRetries: 3, baseMs: 50, maxMs: 100 };

describe('delivering claimed notifications', () => {
  const db = useTestDatabase();
  /** Room for the workers' deliveries and completions at once. */
  const pool = useDatabasePool(db, 10);
  const queues = useQueueScope();
  const scope = useTestScope('file');
  let receiver: WebhookReceiver;
  let status: number | 'hang' = 200;

  beforeAll(async () => {
    receiver = await scope.receiver(() => status);
  });

  function deps(keys: QueueKeys) {
    const config = parseConfig({ WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_TIMEOUT_MS: '4000', LEASE_MS: String(LEASE_MS), LOG_LEVEL: 'silent' });
    return { sql: pool.sql, queue: new NotificationQueue(queues.redis, keys), channels: createChannels(config), policy, leaseMs: LEASE_MS, completions: new CompletionBatcher(pool.sql) };
  }

  async function deliverOnce(id: string, keys: QueueKeys): Promise<void> {
    const row = await claimOne(pool.sql, id, 'worker-t', LEASE_MS);
    expect(row).toBeDefined();
    await deliverClaimed(deps(keys), row!, { id, attempt: row!.attempt, workerId: 'worker-t' }, new AbortController().signal, silentLogger(), () => Date.now() + LEASE_MS);
  }

  describe('deliverClaimed', () => {
    it('marks an IN_APP notification SENT and puts it in the inbox once, even when a duplicate queue entry claims it again', async () => {
      const { id } = await insertPending(pool.sql, { user_id: 'inbox-owner', title: 'T', body: 'B', data: { x: 1 } });

      expect((await deliverToInboxes(pool.sql, [id, id], 'worker-t')).map(({ row }) => row.id)).toEqual([id]);
      expect(await deliverToInboxes(pool.sql, [id], 'worker-late')).toEqual([]);

      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'SENT', retry_count: 0, attempt: 1 });
      expect((await attemptsOf(pool.sql, id)).map((a) => [a.attempt, a.outcome, a.worker_id])).toEqual([[1, 'SENT', 'worker-t']]);
      const items = await pool.sql`select notification_id, user_id, title, body, data, seq from inbox_items where notification_id = ${id}`;
      expect(items).toEqual([{ notification_id: id, user_id: 'inbox-owner', title: 'T', body: 'B', data: { x: 1 }, seq: 1 }]);
    });

    it('marks a webhook answered 2xx SENT', async () => {
      status = 204;
      const keys = testQueueKeys();
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      await deliverOnce(id, keys);
      expect((await rowOf(pool.sql, id)).status).toBe('SENT');
      expect(receiver.forId(id)).toHaveLength(1);
    });

    it('schedules a retry after a 503, then fails and dead-letters at MAX_RETRIES', async () => {
      status = 503;
      const keys = testQueueKeys();
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      for (let n = 1; n < policy.maxRetries; n++) {
        await deliverOnce(id, keys);
        const row = await rowOf(pool.sql, id);
        expect(row).toMatchObject({ status: 'PENDING', retry_count: n });
        expect(row.error_reason).toContain('503');
        await pool.sql`update notifications set available_at = now() where id = ${id}`;
      }
      await deliverOnce(id, keys);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'FAILED', retry_count: policy.maxRetries });
      expect(await queues.redis.lrange(keys.dlq, 0, -1)).toEqual([id]);
      expect((await rowOf(pool.sql, id)).dead_lettered_at).not.toBeNull();
      expect((await attemptsOf(pool.sql, id)).map((a) => a.outcome)).toEqual(['RETRY', 'RETRY', 'FAILED']);
      expect(receiver.forId(id)).toHaveLength(policy.maxRetries);
    });

    it('fails a webhook answered 404 at once and dead-letters it', async () => {
      status = 404;
      const keys = testQueueKeys();
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      await deliverOnce(id, keys);
      const row = await rowOf(pool.sql, id);
      expect(row).toMatchObject({ status: 'FAILED', retry_count: 1 });
      expect(row.error_reason).toContain('404');
      expect(await queues.redis.lrange(keys.dlq, 0, -1)).toEqual([id]);
    });

    it('fails at once a channel this worker has no provider for', async () => {
      const keys = testQueueKeys();
      const { id } = await insertPending(pool.sql, { type: 'EMAIL', recipient: 'a@example.com' });
      await deliverOnce(id, keys);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'FAILED', retry_count: 1 });
      expect(await queues.redis.lrange(keys.dlq, 0, -1)).toEqual([id]);
    });
  });

  describe('NotificationQueue.popMany', () => {
    it('takes the oldest ids up to the limit in queue order, and giveBack puts them back to be taken first in that order', async () => {
      const keys = testQueueKeys();
      const queue = new NotificationQueue(queues.redis, keys);
      const popper = connectBlockingRedis(testRedisUrl(), 1);
      try {
        await queue.push(['a', 'b', 'c', 'd', 'e']);
        expect(await queue.popMany(popper, 1, 3)).toEqual(['a', 'b', 'c']);
        await queue.giveBack(['a', 'b', 'c']);
        expect(await queue.popMany(popper, 1, 10)).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect(await queue.popMany(popper, 1, 10)).toEqual([]);
      } finally {
        popper.disconnect();
      }
    });
  });

  describe('Worker', () => {
    const workers = useInProcessWorkers();

    function startWorker(keys: QueueKeys): Worker {
      return workers.start({ ...deps(keys), concurrency: 4, logger: silentLogger(), workerId: 'in-process' });
    }

    /** A worker on a pool of its own, `own`, whose warnings and errors are kept as JSON lines. */
    function startWorkerOn(keys: QueueKeys, own: Sql, workerId: string): { worker: Worker; lines: string[] } {
      const lines: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
      return { worker: workers.start({ ...deps(keys), sql: own, concurrency: 4, logger, workerId }), lines };
    }

    it('pops queued ids, claims and delivers them, and drops stale entries', async () => {
      status = 200;
      const keys = testQueueKeys();
      const a = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      const b = await insertPending(pool.sql, { user_id: 'inbox-w' });
      const sent = await insertPending(pool.sql);
      await pool.sql`update notifications set status = 'SENT', sent_at = now() where id = ${sent.id}`;
      await queues.redis.lpush(keys.queue, a.id, b.id, sent.id, a.id);
      startWorker(keys);

      await waitFor('both SENT', async () => (await rowOf(pool.sql, a.id)).status === 'SENT' && (await rowOf(pool.sql, b.id)).status === 'SENT');
      await waitFor('queue drained', async () => (await queues.redis.llen(keys.queue)) === 0);
      expect(receiver.forId(a.id)).toHaveLength(1);
      expect((await rowOf(pool.sql, a.id)).attempt).toBe(1);
      expect(await attemptsOf(pool.sql, a.id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'in-process', error: null }]);
      expect((await rowOf(pool.sql, sent.id)).attempt).toBe(0);
    });

    it('drains a backlog larger than its concurrency in batches, and a malformed entry does not hold back its batch', async () => {
      status = 200;
      const keys = testQueueKeys();
      const rows = await Promise.all(Array.from({ length: 11 }, (_, i) => insertPending(pool.sql, { user_id: `batch-${i}` })));
      await queues.redis.lpush(keys.queue, rows[0]!.id, 'not-a-uuid', ...rows.slice(1).map((r) => r.id));
      startWorker(keys);

      await waitFor('all SENT', async () => {
        const [row] = await pool.sql<{ n: number }[]>`
          select count(*)::int as n from notifications where id = any(${rows.map((r) => r.id)}::uuid[]) and status = 'SENT'`;
        return row!.n === rows.length;
      });
      for (const r of rows) {
        expect(await attemptsOf(pool.sql, r.id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'in-process', error: null }]);
      }
      const [inbox] = await pool.sql<{ n: number }[]>`
        select count(*)::int as n from inbox_items where notification_id = any(${rows.map((r) => r.id)}::uuid[])`;
      expect(inbox!.n).toBe(rows.length);
    });

    it('keeps at most `concurrency` deliveries under way while several batches are claimed at once', async () => {
      status = 'hang';
      const keys = testQueueKeys();
      const rows = await Promise.all(Array.from({ length: 12 }, () => insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url })));
      const ids = rows.map((r) => r.id);
      const inFlight = () => ids.filter((id) => receiver.forId(id).length > 0).length;
      await queues.redis.lpush(keys.queue, ...ids);
      workers.start({ ...deps(keys), concurrency: 5, logger: silentLogger(), workerId: 'bounded' });

      await waitFor('5 webhooks under way', () => inFlight() === 5);
      await new Promise((r) => setTimeout(r, 300));
      expect(inFlight()).toBe(5);
      expect(await queues.redis.llen(keys.queue)).toBeGreaterThanOrEqual(12 - 5 - 5);
      status = 200;
      receiver.answerHanging(200);
      await waitFor('all 12 SENT', async () => {
        const [row] = await pool.sql<{ n: number }[]>`select count(*)::int as n from notifications where id = any(${ids}::uuid[]) and status = 'SENT'`;
        return row!.n === 12;
      });
      for (const id of ids) expect(receiver.forId(id)).toHaveLength(1);
    });

    it('puts the ids of a batch it could not claim back on the queue, and pauses instead of popping on', async () => {
      const keys = testQueueKeys();
      const ids = (await Promise.all(Array.from({ length: 3 }, () => insertPending(pool.sql)))).map((r) => r.id);
      await queues.redis.lpush(keys.queue, ...ids);
      // PostgreSQL is unreachable for this worker: nothing listens on its port.
      const unreachable = connectDatabase(`postgres://postgres@127.0.0.1:${await closedPort()}/none`, { max: 2, connectTimeoutSeconds: 1 });
      const { worker: w, lines: warnings } = startWorkerOn(keys, unreachable, 'cut-off');
      try {
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        await w.stop(100);
        await unreachable.end({ timeout: 1 });
      }
      const failedClaims = warnings.filter((line) => line.includes('claim failed')).length;
      expect(failedClaims).toBeGreaterThan(0);
      // A pause after each failure: a handful of tries in 1.5 s, not a loop popping as fast as Redis answers.
      expect(failedClaims).toBeLessThanOrEqual(6);
      const queued = await queues.redis.lrange(keys.queue, 0, -1);
      expect(queued).toHaveLength(3);
      expect(new Set(queued)).toEqual(new Set(ids));
      for (const id of ids) expect((await rowOf(pool.sql, id)).status).toBe('PENDING');
    });

    it('leaves to maintenance, not to the next pop, the ids of a claim PostgreSQL refused as a statement', async () => {
      const keys = testQueueKeys();
      const ids = (await Promise.all(Array.from({ length: 2 }, () => insertPending(pool.sql)))).map((r) => r.id);
      await queues.redis.lpush(keys.queue, ...ids);
      // A session that finds no notifications table: the claim fails the same way however often it is tried.
      const lost = postgres(db.url, { max: 2, onnotice: () => {}, connection: { search_path: 'no_such_schema' } });
      const { worker: w, lines } = startWorkerOn(keys, lost, 'lost');
      try {
        await waitFor('the failed claim', () => lines.some((line) => line.includes('claim failed')), 5000);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await w.stop(100);
        await lost.end({ timeout: 1 });
      }
      expect(lines.filter((line) => line.includes('go back on the queue'))).toEqual([]);
      expect(lines.some((line) => line.includes('maintenance will queue the notifications again'))).toBe(true);
      expect(await queues.redis.llen(keys.queue)).toBe(0);
      for (const id of ids) expect((await rowOf(pool.sql, id)).status).toBe('PENDING');
    });

    it('hands back claims it cannot finish within the grace period on stop', async () => {
      status = 'hang';
      const keys = testQueueKeys();
      const { id } = await insertPending(pool.sql, { type: 'WEBHOOK', recipient: receiver.url });
      await queues.redis.lpush(keys.queue, id);
      const w = startWorker(keys);
      await waitFor('the webhook request', () => receiver.forId(id).length === 1);
      const { released } = await w.stop(100);
      expect(released).toBe(1);
      const row = await rowOf(pool.sql, id);
      expect(row).toMatchObject({ status: 'PENDING', retry_count: 0, queued_at: null, locked_by: null });
      expect(await attemptsOf(pool.sql, id)).toEqual([expect.objectContaining({ attempt: 1, outcome: 'RELEASED', worker_id: 'in-process' })]);
      status = 200;
    });
  });
});
