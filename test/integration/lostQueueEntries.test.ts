import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createChannels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import { NotificationQueue } from '../../internal/queue/notificationQueue.ts';
import { batcherFor } from '../../internal/service/notificationInsertBatcher.ts';
import { Maintainer } from '../../internal/worker/maintenance/maintainer.ts';
import { maintenanceJobs } from '../../internal/worker/maintenance/maintenanceJobs.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { useInProcessWorkers } from '../support/inProcessWorkers.ts';
import { newNotification } from '../support/notificationRow.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';
import { silentLogger } from './helpers.ts';

const LEASE_MS = 3000;
const SWEEP_INTERVAL_MS = 250;
/** The backlog the producer keeps queued, and the least it may fall to while the test watches. */
const BACKLOG = 2500;
const BACKLOG_FLOOR = 1000;
/** Delivering before the flush, and at least this long after it, with the backlog kept up throughout. */
const BEFORE_FLUSH_MS = 12_000;
const AFTER_FLUSH_MS = 30_000;
/** The longest the lost notifications may take, with the backlog kept up, before the test gives up. */
const LOST_LIMIT_MS = 150_000;
/** The sweep's jitter and run, a claim and a delivery, on a machine shared with other work. */
const SLACK_MS = 2500;

describe('queue entries lost under a steady backlog', () => {
  const db = useTestDatabase();
  const pool = useDatabasePool(db, 20);
  const queues = useQueueScope();
  const scope = useTestScope();
  const workers = useInProcessWorkers();

  function ownClient(): Sql {
    const sql = connectDatabase(db.url, { max: 1 });
    scope.defer(() => sql.end({ timeout: 1 }));
    return sql;
  }

  /** Keeps about `BACKLOG` ids queued through the API's insert batcher, and records the depth it saw. */
  function startProducer(recipient: string): { stop: () => Promise<number[]>; created: string[] } {
    const batcher = batcherFor({ sql: pool.sql, queue: queues.queue, logger: silentLogger() });
    const created: string[] = [];
    const depths: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const depth = await queues.queue.depth();
        depths.push(depth);
        const rows = Array.from({ length: Math.max(0, BACKLOG - depth) }, () => newNotification({ type: 'WEBHOOK', recipient }));
        await Promise.all(rows.map((row) => batcher.create(row, () => {})));
        created.push(...rows.map((r) => r.id));
        await sleep(100);
      }
    })();
    return {
      created,
      stop: async () => {
        running = false;
        await loop;
        return depths;
      },
    };
  }

  /** `BACKLOG` new notifications created as the API creates them, but queued on a key of their own. */
  async function queueAside(recipient: string): Promise<{ key: string; ids: string[] }> {
    const key = `${queues.keys.queue}:aside`;
    const aside = new NotificationQueue(queues.redis, { ...queues.keys, queue: key });
    const batcher = batcherFor({ sql: pool.sql, queue: aside, logger: silentLogger() });
    const rows = Array.from({ length: BACKLOG }, () => newNotification({ type: 'WEBHOOK', recipient }));
    await Promise.all(rows.map((row) => batcher.create(row, () => {})));
    return { key, ids: rows.map((r) => r.id) };
  }

  it(
    'puts every lost notification back within a lease and a sweep of its turn, and delivers each once',
    { timeout: 330_000 },
    async () => {
      const receiver = await scope.receiver(() => 200);
      const config = parseConfig({
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_TIMEOUT_MS: '2000',
        LEASE_MS: String(LEASE_MS),
        SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
        LOG_LEVEL: 'silent',
      });
      const policy = { maxRetries: 3, baseMs: 100, maxMs: 200 };
      const logger = silentLogger();
      const producer = startProducer(receiver.url);
      await waitFor('the backlog built', async () => (await queues.queue.depth()) >= BACKLOG_FLOOR);
      workers.start({ sql: pool.sql, renewals: ownClient(), queue: queues.queue, channels: createChannels(config), policy, leaseMs: LEASE_MS, concurrency: 8, logger });
      const maintainer = new Maintainer({ jobs: maintenanceJobs({ sql: pool.sql, queue: queues.queue, policy, config }), leaderSession: ownClient(), logger });
      maintainer.start();
      scope.defer(() => maintainer.stop());
      await sleep(BEFORE_FLUSH_MS);

      // Redis loses the queue (a flush), while the producers carry on at once: in one transaction the
      // ids queued are read, and the key is replaced by a backlog of new notifications queued aside.
      const refill = await queueAside(receiver.url);
      const flushed = await queues.redis.multi().lrange(queues.keys.queue, 0, -1).rename(refill.key, queues.keys.queue).exec();
      const lost = [...new Set(flushed![0]![1] as string[])];
      const flushedAt = new Date();
      producer.created.push(...refill.ids);
      expect(lost.length).toBeGreaterThan(BACKLOG_FLOOR);

      // The backlog is kept up until every lost notification is SENT (or the test gives up on them).
      const lostSent = async () => {
        const [row] = await pool.sql<{ n: number }[]>`select count(*)::int as n from notifications where id = any(${lost}::uuid[]) and status = 'SENT'`;
        return row!.n === lost.length;
      };
      await sleep(AFTER_FLUSH_MS);
      const allLostSent = await waitFor('the lost notifications SENT', lostSent, LOST_LIMIT_MS - AFTER_FLUSH_MS, 250).catch(() => false);
      const depths = await producer.stop();
      expect(allLostSent, 'every lost notification SENT while the backlog was kept up').toBe(true);
      expect(Math.min(...depths.slice(depths.findIndex((d) => d >= BACKLOG_FLOOR))), 'the backlog never fell below its floor').toBeGreaterThanOrEqual(BACKLOG_FLOOR);

      const ids = producer.created;
      await waitFor(
        'every notification SENT',
        async () => {
          const [row] = await pool.sql<{ n: number }[]>`select count(*)::int as n from notifications where status = 'SENT'`;
          return row!.n === ids.length;
        },
        120_000,
        500,
      );

      const deliveries = new Map<string, number>();
      for (const request of receiver.received) {
        const id = String(request.headers['webhook-id']);
        deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      }
      expect(ids.filter((id) => deliveries.get(id) !== 1), 'notifications not delivered exactly once').toEqual([]);

      // The bound the README states: a lost entry is taken up at most a lease and a sweep later than
      // its turn. Its turn is when the entries queued after it are taken, which takes no longer than
      // the wait of the notifications created after the flush, none of which was lost.
      const latencies = await pool.sql<{ id: string; ms: number; after: boolean }[]>`
        select id::text, (extract(epoch from sent_at - created_at) * 1000)::float8 as ms, created_at > ${flushedAt} as after
        from notifications`;
      const lostSet = new Set(lost);
      const turnMs = Math.max(...latencies.filter((r) => r.after).map((r) => r.ms));
      const boundMs = turnMs + LEASE_MS + 1.2 * SWEEP_INTERVAL_MS + SLACK_MS;
      const late = latencies.filter((r) => lostSet.has(r.id) && r.ms > boundMs);
      expect(late.map((r) => ({ id: r.id, ms: Math.round(r.ms) })), `lost notifications SENT later than ${Math.round(boundMs)} ms after creation`).toEqual([]);
    },
  );
});
