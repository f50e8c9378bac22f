import { describe, expect, it } from 'vitest';
import type { Sql } from '../../internal/platform/database.ts';
import { msFromCreationToDeliveringClaim, postNotification, statusReached } from '../support/notifications.ts';
import { serviceEnv, testQueueKeys } from '../support/testEnvironment.ts';
import { isRunning, useTestScope, type RunningWorker } from '../support/testScope.ts';
import type { LogLine } from '../support/serviceProcess.ts';
import { waitFor } from '../support/waitFor.ts';

interface Row {
  status: string;
  attempt: number;
  retry_count: number;
  locked_by: string | null;
  error_reason: string | null;
  lease_expires_at: Date | null;
}

interface Attempt {
  attempt: number;
  worker_id: string | null;
  outcome: string;
  error: string | null;
  started_at: Date;
  finished_at: Date;
}

async function row(sql: Sql, id: string): Promise<Row> {
  const [found] = await sql<Row[]>`
    select status, attempt, retry_count, locked_by, error_reason, lease_expires_at
    from notifications where id = ${id}`;
  if (!found) throw new Error(`notification ${id} is not in the database`);
  return found;
}

async function attempts(sql: Sql, id: string): Promise<Attempt[]> {
  return sql<Attempt[]>`
    select attempt, worker_id, outcome, error, started_at, finished_at
    from notification_attempts where notification_id = ${id} order by attempt`;
}

/**
 * Waits for the row to be SENT by a second attempt, `rescuer`'s, after `first`'s attempt ended
 * LEASE_EXPIRED; returns the attempts.
 */
async function sentAfterTakeover(sql: Sql, id: string, first: RunningWorker, rescuer: RunningWorker): Promise<Attempt[]> {
  const sent = await statusReached(sql, id, 'SENT', 40_000);
  expect(sent).toMatchObject({ attempt: 2, retry_count: 1, locked_by: null, error_reason: null });
  const tried = await attempts(sql, id);
  expect(tried.map((a) => [a.attempt, a.outcome, a.worker_id])).toEqual([
    [1, 'LEASE_EXPIRED', first.id],
    [2, 'SENT', rescuer.id],
  ]);
  return tried;
}

async function postWebhook(apiUrl: string, to: string, userId = 'crash-user'): Promise<string> {
  return (await postNotification(apiUrl, { user_id: userId, type: 'WEBHOOK', body: 'hello', to })).id;
}

function about(id: string, pattern: RegExp): (l: LogLine) => boolean {
  return (l) => l.notificationId === id && pattern.test(l.msg ?? '');
}

describe('worker crashes lose no notification', () => {
  const scope = useTestScope();

  it('a worker SIGKILLed mid-delivery keeps the row PROCESSING until its lease runs out, then a second worker delivers it', async () => {
    const receiver = await scope.receiver((_, n) => (n === 0 ? 'hang' : 200));
    // The first attempt's own time limit is far from its kill, so the kill is what ends it.
    const { db, env, api, worker: first } = await scope.services({ env: { LEASE_MS: '6000', WEBHOOK_TIMEOUT_MS: '5000' } });

    const id = await postWebhook(api.url, receiver.url);
    await waitFor('the first worker to send the webhook', () => receiver.forId(id).length === 1, 20_000, 20);
    await first.process.kill();

    const orphaned = await row(db.sql, id);
    expect(orphaned).toMatchObject({ status: 'PROCESSING', attempt: 1, retry_count: 0, locked_by: first.id });
    const leaseEnd = orphaned.lease_expires_at!;
    expect(leaseEnd.getTime()).toBeGreaterThan(Date.now() - 1000);

    const second = await scope.worker(env);
    const tried = await sentAfterTakeover(db.sql, id, first, second);
    expect(tried[0]!.error).toMatch(/lease expired/);
    // Nobody took the row over before the dead worker's lease had run out.
    expect(tried[0]!.finished_at.getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());
    expect(tried[1]!.started_at.getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());

    const hits = receiver.forId(id);
    expect(hits).toHaveLength(2);
    expect(hits[0]!.abandonedAt).toBeDefined();
    expect(hits[1]!.abandonedAt).toBeUndefined();
    expect(isRunning(second.process)).toBe(true);
  });

  it('a worker that popped an id and was SIGKILLed before its claim reached PostgreSQL loses nothing: the maintenance of another worker queues it again after LEASE_MS and it is delivered once', async () => {
    const db = await scope.database();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver();
    const redis = scope.redis();
    // The doomed worker reaches PostgreSQL through a proxy the test freezes, so its claim never
    // arrives: it pops the id and then waits on PostgreSQL, holding the id only in its memory.
    const { keys, env, api, worker: doomed } = await scope.services({ db, workerEnv: { DATABASE_URL: pg.urlFor(db.url) } });
    pg.freeze();

    const id = await postWebhook(api.url, receiver.url);
    await waitFor('the doomed worker to pop the id', async () => (await redis.llen(keys.queue)) === 0, 10_000, 20);
    expect(await row(db.sql, id)).toMatchObject({ status: 'PENDING', attempt: 0, locked_by: null });
    await doomed.process.kill();
    pg.restore();
    expect(await redis.llen(keys.queue)).toBe(0);

    const survivor = await scope.worker(env);
    await survivor.process.waitForLog('maintenance leadership gained');
    const sent = await statusReached(db.sql, id, 'SENT', 40_000);
    expect(sent).toMatchObject({ attempt: 1, retry_count: 0, error_reason: null });
    expect((await attempts(db.sql, id)).map((a) => [a.attempt, a.outcome, a.worker_id])).toEqual([[1, 'SENT', survivor.id]]);
    // Queued again only once the row had waited a lease unclaimed: its entry was not just slow.
    expect(await msFromCreationToDeliveringClaim(db.sql, id)).toBeGreaterThanOrEqual(Number(env.LEASE_MS));
    expect(survivor.process.logs.some((l) => l.msg === 'maintenance job done' && l.job === 'dueRowScheduler')).toBe(true);
    expect(doomed.process.logs.some(about(id, /./))).toBe(false);
    expect(receiver.forId(id)).toHaveLength(1);
    await waitFor('the re-queued entry to be consumed', async () => (await redis.llen(keys.queue)) === 0);
  });

  it('a worker SIGSTOPped past its lease is fenced: after SIGCONT its late outcome does not touch the newer claim, which ends SENT', async () => {
    const receiver = await scope.receiver(() => 'hang');
    const { db, keys, api, worker: stale } = await scope.services({ env: { LEASE_MS: '5000', WEBHOOK_TIMEOUT_MS: '4000' } });
    // Both workers' requests wait until the test answers them; the rescuer's own limits are long
    // enough that its attempt is still waiting when the test answers it.
    const rescuerEnv = serviceEnv(db, keys, { LEASE_MS: '20000', WEBHOOK_TIMEOUT_MS: '15000' });

    const id = await postWebhook(api.url, receiver.url);
    await waitFor('the first worker to send the webhook', () => receiver.forId(id).length === 1, 20_000, 20);
    stale.process.signal('SIGSTOP');
    expect(await row(db.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 1, locked_by: stale.id });

    const rescuer = await scope.worker(rescuerEnv);
    await waitFor('the second worker to take the notification over and send it', () => receiver.forId(id).length === 2, 30_000);
    expect(await row(db.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, retry_count: 1, locked_by: rescuer.id });

    // The stale worker wakes up while the newer claim is under way, and finishes its own attempt;
    // the receiver answers the stale worker's request, if that worker still waits for it.
    const [staleRequest, rescuerRequest] = receiver.forId(id);
    stale.process.signal('SIGCONT');
    receiver.answerHanging(200, (r) => r === staleRequest);
    const late = await stale.process.waitForLog(about(id, /claim had been taken over/), 20_000);
    expect(late.attempt).toBe(1);
    expect(late.workerId).toBe(stale.id);
    expect(stale.process.logs.some(about(id, /^notification sent$/))).toBe(false);
    expect(await row(db.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, retry_count: 1, locked_by: rescuer.id });

    expect(receiver.answerHanging(200, (r) => r === rescuerRequest)).toBe(1);
    const tried = await sentAfterTakeover(db.sql, id, stale, rescuer);
    expect(tried.filter((a) => a.outcome === 'SENT')).toHaveLength(1);
    expect(receiver.forId(id)).toHaveLength(2);
    expect(isRunning(stale.process)).toBe(true);
    expect(isRunning(rescuer.process)).toBe(true);
  });

  it('a worker whose record of a delivered webhook reaches PostgreSQL only after its lease ran out is fenced and changes nothing', async () => {
    const db = await scope.database();
    const staleKeys = testQueueKeys();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver(() => 'hang');
    const staleTimings = { LEASE_MS: '2500', WEBHOOK_TIMEOUT_MS: '1500' };
    const api = await scope.api(serviceEnv(db, staleKeys, staleTimings));
    // The rescuer listens on a queue of its own, so only its maintenance jobs can hand it this notification.
    const rescuer = await scope.worker(serviceEnv(db, testQueueKeys(), { LEASE_MS: '20000', WEBHOOK_TIMEOUT_MS: '15000' }));
    const stale = await scope.worker(serviceEnv(db, staleKeys, { ...staleTimings, DATABASE_URL: pg.urlFor(db.url) }));

    const id = await postWebhook(api.url, receiver.url);
    await waitFor('the stale worker to send the webhook', () => receiver.forId(id).length === 1, 20_000, 10);
    // The stale worker's PostgreSQL goes silent, then its webhook is answered 200: it has
    // delivered, and its UPDATE recording that waits in the blackhole.
    pg.freeze();
    expect(receiver.answerHanging(200)).toBe(1);

    await waitFor('the rescuer to take the notification over and send it', () => receiver.forId(id).length === 2, 30_000);
    expect(await row(db.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, retry_count: 1, locked_by: rescuer.id });
    pg.restore();

    const late = await stale.process.waitForLog(about(id, /claim had been taken over/), 20_000);
    expect(late.msg).toBe('delivered, but the claim had been taken over; the newer attempt decides the outcome');
    expect(late.attempt).toBe(1);
    expect(await row(db.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, locked_by: rescuer.id });

    expect(receiver.answerHanging(200)).toBe(1);
    await sentAfterTakeover(db.sql, id, stale, rescuer);
    // Both workers reached the receiver: the stale one's delivery was real but recorded too late.
    const hits = receiver.forId(id);
    expect(hits).toHaveLength(2);
    expect(hits.every((h) => h.abandonedAt === undefined)).toBe(true);
    expect(isRunning(stale.process)).toBe(true);
  });

  it('notifications whose queue entries Redis lost are all delivered once from the PostgreSQL record', async () => {
    const db = await scope.database();
    const keys = testQueueKeys();
    const env = serviceEnv(db, keys);
    const receiver = await scope.receiver();
    const redis = scope.redis();
    const api = await scope.api(env);

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await postWebhook(api.url, receiver.url, `lost-${i}`));
    expect(await redis.llen(keys.queue)).toBe(5);
    expect(await redis.del(keys.queue)).toBe(1);

    const worker = await scope.worker(env);
    for (const id of ids) await statusReached(db.sql, id, 'SENT', 40_000);

    for (const id of ids) {
      expect(receiver.forId(id), id).toHaveLength(1);
      expect((await attempts(db.sql, id)).map((a) => [a.attempt, a.outcome, a.worker_id])).toEqual([[1, 'SENT', worker.id]]);
      expect(await msFromCreationToDeliveringClaim(db.sql, id)).toBeGreaterThanOrEqual(Number(env.LEASE_MS));
    }
    const [counts] = await db.sql<{ sent: number; total: number }[]>`
      select count(*) filter (where status = 'SENT')::int as sent, count(*)::int as total from notifications`;
    expect(counts).toEqual({ sent: 5, total: 5 });
  });
});
