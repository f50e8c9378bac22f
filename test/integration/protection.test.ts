import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CACHE_TTL_MS, createApiKey } from '../../internal/service/apiKeyService.ts';
import { createTestDatabase, type TestDatabase } from '../support/testEnvironment.ts';
import { waitFor } from '../support/waitFor.ts';
import { buildApi, countNotifications, type TestApi } from './helpers.ts';

const notification = { user_id: 'u-limit', type: 'IN_APP', body: 'hello' };

describe('rate limits and the backlog bound', () => {
  let db: TestDatabase;
  const apis: TestApi[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(apis.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function api(env: Record<string, string>, sql?: postgres.Sql): Promise<TestApi> {
    const built = await buildApi(db, { env, sql });
    apis.push(built);
    return built;
  }

  /** An API whose pool notes every statement it sends that reads api_keys: the key checks that reached PostgreSQL. */
  async function apiCountingKeyChecks(env: Record<string, string>): Promise<{ a: TestApi; keyChecks: () => number }> {
    let checks = 0;
    const sql = postgres(db.url, {
      max: 2,
      onnotice: () => {},
      debug: (_connection, query) => {
        if (/from api_keys/i.test(query)) checks++;
      },
    });
    return { a: await api(env, sql), keyChecks: () => checks };
  }
  const post = (a: TestApi, key?: string, userId = notification.user_id) =>
    a.app.request('/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ ...notification, user_id: userId }),
    });

  it('answers 429 with Retry-After past an API key\'s rate, counts each key on its own, and lets it in again after the window', async () => {
    const a = await api({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '3' });
    const first = await createApiKey(db.sql, `limited-${randomUUID()}`, ['send']);
    const second = await createApiKey(db.sql, `other-${randomUUID()}`, ['send']);
    // The key's one-second window, opened here and held for a minute, so however slow the machine
    // nothing below can outlast it: the limiter counts in an existing window and keeps its expiry.
    const window = `${a.keys.queue}:rate:key:${first.row.id}`;
    await a.redis.set(window, 0, 'PX', 60_000);

    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post(a, first.key)).status);
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
    expect(Number(await a.redis.get(window)), 'the requests were counted in the held window').toBe(5);
    const refused = await post(a, first.key);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await post(a, second.key)).status).toBe(201);

    // The window ends (as its expiry would end it): the key is let in again.
    await a.redis.del(window);
    expect((await post(a, first.key)).status).toBe(201);
  });

  it('stores nothing for a refused request', async () => {
    const a = await api({ AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '1' });
    const { key } = await createApiKey(db.sql, `one-${randomUUID()}`, ['send']);
    const userId = `u-${randomUUID()}`;
    const statuses = await Promise.all(Array.from({ length: 6 }, async () => (await post(a, key, userId)).status));
    expect(statuses).toContain(429);
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where user_id = ${userId}`;
    expect(row!.n).toBe(statuses.filter((s) => s === 201).length);
  });

  it('answers 429 with Retry-After, before asking PostgreSQL, once a client address has failed AUTH_FAILURES_PER_MINUTE key checks', async () => {
    const { a, keyChecks } = await apiCountingKeyChecks({ AUTH_DISABLED: 'false', AUTH_FAILURES_PER_MINUTE: '3' });
    const live = await createApiKey(db.sql, `live-${randomUUID()}`, ['send']);
    expect((await post(a, live.key)).status).toBe(201);

    const checksBefore = keyChecks();
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(a, `hk_guess-${randomUUID()}`)).status);
    expect(statuses).toEqual([401, 401, 401]);
    expect(keyChecks() - checksBefore, 'each unknown key was looked up once').toBe(3);
    const [window] = await a.redis.keys(`${a.keys.queue}:rate:auth-failures:*`);
    expect(Number(await a.redis.get(window!)), 'the failures were counted in Redis for the address').toBe(3);

    const refused = await post(a, `hk_guess-${randomUUID()}`);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('rate_limited');
    expect(body.error.message).toContain('failed API key checks');
    // Nor for more guesses, nor for a request without any key's row in memory.
    expect((await post(a, `hk_guess-${randomUUID()}`)).status).toBe(429);
    expect(keyChecks() - checksBefore, 'no key check reached PostgreSQL once the address was over').toBe(3);

    // A key the API has found live still works from that address, also once its check is due
    // again (the clock is moved past the cache time): behind a proxy every client shares one
    // address, and a guesser there must not lock out the producers whose keys work.
    expect((await post(a, live.key)).status).toBe(201);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + CACHE_TTL_MS + 1);
      expect((await post(a, live.key)).status).toBe(201);
      expect(keyChecks() - checksBefore, 'the live key was looked up again').toBe(4);
      expect((await post(a, `hk_guess-${randomUUID()}`)).status).toBe(429);
    } finally {
      vi.useRealTimers();
    }

    // The window ends (as its expiry would end it): keys are checked again.
    await a.redis.del(window!);
    expect((await post(a, `hk_guess-${randomUUID()}`)).status).toBe(401);
    expect(keyChecks() - checksBefore).toBe(5);
  });

  it('asks PostgreSQL once for an unknown key that is sent again and again', async () => {
    const { a, keyChecks } = await apiCountingKeyChecks({ AUTH_DISABLED: 'false', AUTH_FAILURES_PER_MINUTE: '100' });
    const unknown = `hk_unknown-${randomUUID()}`;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post(a, unknown)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    expect(keyChecks()).toBe(1);
  });

  it('does not count a request without a key, nor a live key without the scope, as a failed check', async () => {
    const a = await api({ AUTH_DISABLED: 'false', AUTH_FAILURES_PER_MINUTE: '1' });
    const reader = await createApiKey(db.sql, `reader-${randomUUID()}`, ['read']);
    expect((await post(a)).status).toBe(401);
    expect((await post(a, reader.key)).status).toBe(403);
    expect(await a.redis.keys(`${a.keys.queue}:rate:auth-failures:*`)).toEqual([]);
  });

  it('refuses new notifications with 503 overloaded and Retry-After while the queue is deeper than MAX_QUEUE_DEPTH, then takes them again', async () => {
    const a = await api({ MAX_QUEUE_DEPTH: '5' });
    await a.redis.lpush(a.keys.queue, ...Array.from({ length: 10 }, () => randomUUID()));
    // The depth is read in the background, at most once a second.
    let refused: Response | undefined;
    await waitFor('a 503 once the API has read the queue depth', async () => {
      const res = await post(a);
      if (res.status === 503) refused = res;
      return refused !== undefined;
    }, 5000);
    expect(refused!.headers.get('retry-after')).toBe('5');
    const body = (await refused!.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('overloaded');
    expect(body.error.message).toContain('limit 5');

    const before = await countNotifications(db.sql);
    expect((await post(a)).status).toBe(503);
    expect(await countNotifications(db.sql)).toBe(before);

    await a.redis.del(a.keys.queue);
    await waitFor('creates accepted again once the queue drained', async () => (await post(a)).status === 201, 5000);
  });

  it('judges the first create after a quiet spell on a fresh reading of the queue, not the last one taken', async () => {
    const a = await api({ MAX_QUEUE_DEPTH: '20' });
    expect((await post(a)).status).toBe(201);
    const queued = await a.redis.llen(a.keys.queue);
    await a.redis.lpush(a.keys.queue, ...Array.from({ length: 21 - queued }, () => randomUUID()));
    // Quiet for longer than a reading may be old: the next create must look again.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const before = await countNotifications(db.sql);
    expect((await post(a)).status).toBe(503);
    expect(await countNotifications(db.sql)).toBe(before);

    await a.redis.del(a.keys.queue);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await post(a)).status).toBe(201);
  });

  it('does not hold back reads while the queue is deep', async () => {
    const a = await api({ MAX_QUEUE_DEPTH: '1' });
    const created = await post(a);
    const { id } = (await created.json()) as { id: string };
    await a.redis.lpush(a.keys.queue, ...Array.from({ length: 5 }, () => randomUUID()));
    await waitFor('the backlog bound to apply', async () => (await post(a)).status === 503, 5000);
    expect((await a.app.request(`/notifications/${id}`)).status).toBe(200);
  });
});
