import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Sql } from '../../internal/platform/database.ts';
import { msFromCreationToDeliveringClaim, statusReached } from '../support/notifications.ts';
import { testRedisUrl } from '../support/testEnvironment.ts';
import { isRunning, useTestScope } from '../support/testScope.ts';
import type { LogLine } from '../support/serviceProcess.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';

/** The harness's REQUEST_TIMEOUT_MS, and how much longer than it a refusal may take to be "prompt". */
const REQUEST_TIMEOUT_MS = 2000;
const PROMPT_MARGIN_MS = 3000;

interface Answer {
  status: number;
  json: Record<string, unknown>;
  ms: number;
}

interface ErrorJson {
  error: { code: string; message: string };
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(url, init);
  const text = await res.text();
  const ms = Date.now() - started;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json, ms };
}

function postWebhook(apiUrl: string, to: string, userId: string): Promise<Answer> {
  return call(`${apiUrl}/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, type: 'WEBHOOK', body: `for ${userId}`, to }),
  });
}

async function created(answer: Promise<Answer>): Promise<string> {
  const a = await answer;
  expect(a.status, JSON.stringify(a.json)).toBe(201);
  return a.json.id as string;
}

async function statusOf(sql: Sql, id: string): Promise<string | undefined> {
  const [r] = await sql<{ status: string }[]>`select status from notifications where id = ${id}`;
  return r?.status;
}

async function untilSent(sql: Sql, id: string): Promise<void> {
  await statusReached(sql, id, 'SENT', 40_000);
}

async function outcomes(sql: Sql, id: string): Promise<string[]> {
  const rows = await sql<{ outcome: string }[]>`
    select outcome from notification_attempts where notification_id = ${id} order by attempt`;
  return rows.map((r) => r.outcome);
}

async function rowsOf(sql: Sql, userId: string): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from notifications where user_id = ${userId}`;
  return r!.n;
}

function hitsFor(receiver: WebhookReceiver, userId: string): number {
  return receiver.received.filter((r) => r.json.user_id === userId).length;
}

function expectUnavailable(answer: Answer, dependency: 'postgres' | 'redis'): void {
  expect(answer.status, JSON.stringify(answer.json)).toBe(503);
  const { error } = answer.json as unknown as ErrorJson;
  expect(error.code).toBe('unavailable');
  expect(error.message).toContain(dependency);
  expect(answer.ms).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
}

function logged(pattern: RegExp): (l: LogLine) => boolean {
  return (l) => pattern.test(l.msg ?? '');
}

const SOME_ID = '00000000-0000-4000-8000-000000000000';

describe('dependency outages lose no notification', () => {
  const scope = useTestScope();

  /**
   * The service with the API reaching PostgreSQL through a proxy and a receiver for its webhooks.
   * The worker is not cut off: a lease far above any stall keeps its deliveries to one attempt each.
   */
  async function apiBehindPostgresProxy() {
    const db = await scope.database();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver();
    const { api } = await scope.services({ db, env: { LEASE_MS: '30000' }, apiEnv: { DATABASE_URL: pg.urlFor(db.url) } });
    return { db, pg, receiver, api };
  }

  it('with Redis cut off from the API, POST still answers 201, /readyz names redis down, and maintenance delivers the stored row', async () => {
    const redisProxy = await scope.proxy(testRedisUrl());
    const receiver = await scope.receiver();
    const redis = scope.redis();
    const { db, keys, env, api, worker } = await scope.services({ apiEnv: { REDIS_URL: redisProxy.urlFor(testRedisUrl()) } });
    await waitFor('the API to be ready', async () => (await call(`${api.url}/readyz`)).status === 200);

    redisProxy.cut();
    const posted = await postWebhook(api.url, receiver.url, 'redis-cut');
    expect(posted.status, JSON.stringify(posted.json)).toBe(201);
    expect(posted.json).toMatchObject({ user_id: 'redis-cut', status: 'PENDING' });
    expect(posted.ms).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
    const id = posted.json.id as string;
    expect(await rowsOf(db.sql, 'redis-cut')).toBe(1);
    await api.process.waitForLog((l) => l.notificationId === id && l.msg === 'queue push failed; maintenance will queue it');
    expect(await redis.lrange(keys.queue, 0, -1)).not.toContain(id);

    const ready = await call(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'unavailable', postgres: 'up', redis: 'down' });

    await untilSent(db.sql, id);
    expect(await outcomes(db.sql, id)).toEqual(['SENT']);
    expect(await msFromCreationToDeliveringClaim(db.sql, id)).toBeGreaterThanOrEqual(Number(env.LEASE_MS));
    expect(receiver.forId(id)).toHaveLength(1);

    redisProxy.restore();
    const readyAgain = await waitFor('the API to be ready again', async () => {
      const r = await call(`${api.url}/readyz`);
      return r.status === 200 ? r : undefined;
    });
    expect(readyAgain.json).toMatchObject({ status: 'ready', postgres: 'up', redis: 'up' });
    const after = await created(postWebhook(api.url, receiver.url, 'redis-back'));
    await untilSent(db.sql, after);
    // Queued through Redis again, so it does not wait for maintenance.
    expect(await msFromCreationToDeliveringClaim(db.sql, after)).toBeLessThan(Number(env.LEASE_MS));
    expect(receiver.forId(after)).toHaveLength(1);
    expect(isRunning(api.process) && isRunning(worker.process)).toBe(true);
  });

  it('with Redis blackholed for the API, POST still answers 201 within REQUEST_TIMEOUT_MS and the notification is delivered', async () => {
    const redisProxy = await scope.proxy(testRedisUrl());
    const receiver = await scope.receiver();
    const redis = scope.redis();
    const { db, keys, api } = await scope.services({ apiEnv: { REDIS_URL: redisProxy.urlFor(testRedisUrl()) } });
    await waitFor('the API to be ready', async () => (await call(`${api.url}/readyz`)).status === 200);

    redisProxy.freeze();
    const [posted, ready] = await Promise.all([postWebhook(api.url, receiver.url, 'redis-frozen'), call(`${api.url}/readyz`)]);
    expect(posted.status, JSON.stringify(posted.json)).toBe(201);
    expect(posted.ms).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'unavailable', postgres: 'up', redis: 'down' });
    expect(ready.ms).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
    const id = posted.json.id as string;
    await untilSent(db.sql, id);
    expect(await outcomes(db.sql, id)).toEqual(['SENT']);

    redisProxy.restore();
    await waitFor('the API to be ready again', async () => (await call(`${api.url}/readyz`)).status === 200);
    const after = await created(postWebhook(api.url, receiver.url, 'redis-back'));
    await untilSent(db.sql, after);
    // The LPUSH held in the blackhole may still land after the restore; the row is claimed once regardless.
    await waitFor('the queue to be drained', async () => (await redis.llen(keys.queue)) === 0);
    expect(receiver.forId(id)).toHaveLength(1);
    expect(receiver.forId(after)).toHaveLength(1);
    expect(await outcomes(db.sql, id)).toEqual(['SENT']);
  });

  it('with PostgreSQL cut off from the API, POST and GET answer 503 promptly, nothing is stored, and all works again after restore', async () => {
    const { db, pg, receiver, api } = await apiBehindPostgresProxy();
    const before = await created(postWebhook(api.url, receiver.url, 'pg-before'));
    await untilSent(db.sql, before);

    pg.cut();
    expectUnavailable(await postWebhook(api.url, receiver.url, 'pg-cut'), 'postgres');
    expectUnavailable(await call(`${api.url}/notifications/${before}`), 'postgres');
    expectUnavailable(await call(`${api.url}/notifications/${SOME_ID}`), 'postgres');
    const ready = await call(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'unavailable', postgres: 'down', redis: 'up' });
    expect(ready.ms).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
    // Clients retry what was refused: the outage sees a stream of requests, each refused.
    for (let i = 0; i < 10; i++) expectUnavailable(await postWebhook(api.url, receiver.url, 'pg-cut'), 'postgres');

    pg.restore();
    const restoredAt = Date.now();
    await waitFor('the API to be ready again', async () => (await call(`${api.url}/readyz`)).status === 200);
    expect(Date.now() - restoredAt).toBeLessThan(REQUEST_TIMEOUT_MS + PROMPT_MARGIN_MS);
    expect(await rowsOf(db.sql, 'pg-cut')).toBe(0);
    const got = await call(`${api.url}/notifications/${before}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: before, status: 'SENT' });
    expect((await call(`${api.url}/notifications/${SOME_ID}`)).status).toBe(404);

    const after = await created(postWebhook(api.url, receiver.url, 'pg-after'));
    await untilSent(db.sql, after);
    expect(receiver.forId(after)).toHaveLength(1);
    expect(hitsFor(receiver, 'pg-cut')).toBe(0);
    const [total] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications`;
    expect(total!.n).toBe(2);
  });

  it('with PostgreSQL blackholed for the API, POST answers 503 within REQUEST_TIMEOUT_MS and the abandoned write never lands after restore', async () => {
    const { db, pg, receiver, api } = await apiBehindPostgresProxy();
    // Leaves open connections in the API's pool, which the blackhole then holds.
    const before = await created(postWebhook(api.url, receiver.url, 'pg-before'));
    await untilSent(db.sql, before);

    pg.freeze();
    const [posted, got, ready] = await Promise.all([
      postWebhook(api.url, receiver.url, 'pg-frozen'),
      call(`${api.url}/notifications/${before}`),
      call(`${api.url}/readyz`),
    ]);
    expectUnavailable(posted, 'postgres');
    expectUnavailable(got, 'postgres');
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'unavailable', postgres: 'down', redis: 'up' });
    // A second write while the first is still held.
    expectUnavailable(await postWebhook(api.url, receiver.url, 'pg-frozen'), 'postgres');

    pg.restore();
    await waitFor('the API to be ready again', async () => (await call(`${api.url}/readyz`)).status === 200);
    // The held statements reach PostgreSQL now; give them time to do whatever they would do.
    for (let i = 0; i < 8; i++) {
      expect(await rowsOf(db.sql, 'pg-frozen')).toBe(0);
      await sleep(500);
    }
    const [inFlight] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = ${db.name} and state like 'idle in transaction%'`;
    expect(inFlight!.n).toBe(0);
    expect(await rowsOf(db.sql, 'pg-frozen')).toBe(0);

    const after = await created(postWebhook(api.url, receiver.url, 'pg-after'));
    await untilSent(db.sql, after);
    expect(receiver.forId(after)).toHaveLength(1);
    expect(hitsFor(receiver, 'pg-frozen')).toBe(0);
    expect((await call(`${api.url}/notifications/${after}`)).json).toMatchObject({ id: after, status: 'SENT' });
  });

  it('with PostgreSQL cut off from the worker for several seconds, the worker keeps running and afterwards every notification ends SENT', async () => {
    const db = await scope.database();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver((r) => (r.json.user_id === 'in-flight' ? 'hang' : 200));
    // The in-flight attempt's own time limit leaves the test room to cut PostgreSQL first.
    const { env, api, worker } = await scope.services({
      db,
      env: { LEASE_MS: '4000', WEBHOOK_TIMEOUT_MS: '3000' },
      workerEnv: { DATABASE_URL: pg.urlFor(db.url) },
    });
    const before = await created(postWebhook(api.url, receiver.url, 'pg-before'));
    await untilSent(db.sql, before);

    // One delivery under way when PostgreSQL goes: its outcome cannot be recorded in time.
    const inFlight = await created(postWebhook(api.url, receiver.url, 'in-flight'));
    await waitFor('the in-flight webhook to be sent', () => receiver.forId(inFlight).length === 1);
    pg.cut();
    receiver.respond = () => 200;
    expect(receiver.answerHanging(200)).toBe(1);

    const during: string[] = [];
    for (let i = 0; i < 5; i++) during.push(await created(postWebhook(api.url, receiver.url, `pg-down-${i}`)));
    await worker.process.waitForLog(logged(/^claim failed/));
    await worker.process.waitForLog(logged(/^maintenance job failed/));
    await sleep(Number(env.LEASE_MS) + 1000);
    expect(isRunning(worker.process)).toBe(true);
    for (const id of during) expect(await statusOf(db.sql, id)).toBe('PENDING');
    expect(await statusOf(db.sql, inFlight)).toBe('PROCESSING');

    pg.restore();
    const restoredAt = Date.now();
    for (const id of [inFlight, ...during]) await untilSent(db.sql, id);
    // Every row was due when PostgreSQL came back, so the worker resumes at once, not after a long pause.
    expect(Date.now() - restoredAt).toBeLessThan(2 * (Number(env.LEASE_MS) + PROMPT_MARGIN_MS));

    expect(isRunning(worker.process)).toBe(true);
    expect(receiver.forId(before)).toHaveLength(1);
    for (const id of during) {
      expect(receiver.forId(id), id).toHaveLength(1);
      expect(await outcomes(db.sql, id)).toEqual(['SENT']);
    }
    // The delivery whose outcome was lost with PostgreSQL is retried after its lease: every
    // request the receiver saw is one recorded attempt, and exactly one of them is SENT.
    const inFlightOutcomes = await outcomes(db.sql, inFlight);
    expect(receiver.forId(inFlight).length).toBeGreaterThanOrEqual(1);
    expect(receiver.forId(inFlight)).toHaveLength(inFlightOutcomes.length);
    expect(inFlightOutcomes.filter((o) => o === 'SENT')).toEqual(['SENT']);
    expect(inFlightOutcomes.at(-1)).toBe('SENT');
  });

  it('with PostgreSQL blackholed for the worker, the worker keeps running and delivers every notification once after restore', async () => {
    const db = await scope.database();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver();
    const { env, api, worker } = await scope.services({ db, workerEnv: { DATABASE_URL: pg.urlFor(db.url) } });
    const before = await created(postWebhook(api.url, receiver.url, 'pg-before'));
    await untilSent(db.sql, before);

    pg.freeze();
    const during: string[] = [];
    for (let i = 0; i < 5; i++) during.push(await created(postWebhook(api.url, receiver.url, `pg-frozen-${i}`)));
    await sleep(Number(env.LEASE_MS) + 2000);
    expect(isRunning(worker.process)).toBe(true);
    for (const id of during) expect(await statusOf(db.sql, id)).toBe('PENDING');
    expect(receiver.received).toHaveLength(1);

    pg.restore();
    const restoredAt = Date.now();
    for (const id of during) await untilSent(db.sql, id);
    expect(Date.now() - restoredAt).toBeLessThan(2 * (Number(env.LEASE_MS) + PROMPT_MARGIN_MS));
    await sleep(1000);
    for (const id of during) {
      expect(receiver.forId(id), id).toHaveLength(1);
      expect(await outcomes(db.sql, id)).toEqual(['SENT']);
    }
    expect(isRunning(worker.process)).toBe(true);
  });

  it('with Redis cut off from the worker, the worker keeps running and delivers everything once Redis is back', async () => {
    const redisProxy = await scope.proxy(testRedisUrl());
    const receiver = await scope.receiver();
    const redis = scope.redis();
    const { db, keys, env, api, worker } = await scope.services({ workerEnv: { REDIS_URL: redisProxy.urlFor(testRedisUrl()) } });
    const before = await created(postWebhook(api.url, receiver.url, 'redis-before'));
    await untilSent(db.sql, before);

    redisProxy.cut();
    const during: string[] = [];
    for (let i = 0; i < 5; i++) during.push(await created(postWebhook(api.url, receiver.url, `redis-down-${i}`)));
    await worker.process.waitForLog(logged(/^redis connection error/));
    await sleep(Number(env.LEASE_MS) + 1000);
    expect(isRunning(worker.process)).toBe(true);
    for (const id of during) expect(await statusOf(db.sql, id)).toBe('PENDING');
    expect(receiver.received).toHaveLength(1);
    expect(await redis.lrange(keys.queue, 0, -1)).toEqual(expect.arrayContaining(during));

    redisProxy.restore();
    for (const id of during) await untilSent(db.sql, id);
    for (const id of during) {
      expect(receiver.forId(id), id).toHaveLength(1);
      expect(await outcomes(db.sql, id)).toEqual(['SENT']);
    }
    await waitFor('the queue to be drained', async () => (await redis.llen(keys.queue)) === 0);
    expect(isRunning(worker.process)).toBe(true);
  });

  it('with Redis blackholed for the worker, its blocked pop gives up instead of waiting forever, and it delivers once Redis is back', async () => {
    const redisProxy = await scope.proxy(testRedisUrl());
    const receiver = await scope.receiver();
    const { db, api, worker } = await scope.services({ workerEnv: { REDIS_URL: redisProxy.urlFor(testRedisUrl()) } });

    redisProxy.freeze();
    const frozenAt = Date.now();
    // The blocking pop's own timeout is 1 s and its command timeout 5 s above that, so the worker
    // gives up on it about 6 s after the freeze; its own log time says when, whatever the test's delays.
    const failure = await worker.process.waitForLog((l) => logged(/^queue pop failed/)(l) && Number(l.time) >= frozenAt, 30_000);
    expect(Number(failure.time) - frozenAt).toBeLessThan(10_000);
    expect(isRunning(worker.process)).toBe(true);

    const id = await created(postWebhook(api.url, receiver.url, 'redis-blackholed'));
    redisProxy.restore();
    await untilSent(db.sql, id);
    expect(receiver.forId(id)).toHaveLength(1);
  });
});
