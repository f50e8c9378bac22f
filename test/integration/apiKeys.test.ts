import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CACHE_TTL_MS, createApiKey } from '../../internal/service/apiKeyService.ts';
import { revokeApiKey } from '../../internal/repository/apiKeys.ts';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { createTestDatabase, type TestDatabase } from '../support/testEnvironment.ts';
import { buildApi, countNotifications, type TestApi } from './helpers.ts';

const SECRET = 'an-inbox-secret-of-at-least-32-characters';
const notification = { user_id: 'u-auth', type: 'IN_APP', body: 'hello' };

describe('API keys on producer routes', () => {
  let db: TestDatabase;
  let api: TestApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await buildApi(db, { env: { AUTH_DISABLED: 'false', INBOX_JWT_SECRET: SECRET } });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });

  const post = (key?: string, body: unknown = notification) =>
    api.app.request('/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });
  const get = (path: string, key?: string) => api.app.request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  it('refuses a request without a key with 401, a Bearer challenge and how to get one, storing nothing', async () => {
    const before = await countNotifications(db.sql);
    const res = await post();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unauthorized');
    expect(body.error.message).toContain('npm run apikey');
    expect(await countNotifications(db.sql)).toBe(before);
  });

  it.each([
    ['an unknown key', 'hk_not-a-key-anyone-was-given'],
    ['a key in the wrong scheme', undefined],
  ])('refuses %s with 401', async (_, key) => {
    const res = key ? await post(key) : await api.app.request('/notifications', { method: 'POST', headers: { authorization: 'Basic dTpw', 'content-type': 'application/json' }, body: JSON.stringify(notification) });
    expect(res.status).toBe(401);
  });

  it('lets a send key create and a read key read, and answers 403 naming the missing scope otherwise', async () => {
    const sender = await createApiKey(db.sql, 'sender', ['send']);
    const reader = await createApiKey(db.sql, 'reader', ['read']);

    const created = await post(sender.key);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    expect((await get(`/notifications/${id}`, reader.key)).status).toBe(200);
    const readBySender = await get(`/notifications/${id}`, sender.key);
    expect(readBySender.status).toBe(403);
    expect(((await readBySender.json()) as { error: { message: string } }).error.message).toContain('"read" scope');

    const before = await countNotifications(db.sql);
    const postedByReader = await post(reader.key);
    expect(postedByReader.status).toBe(403);
    expect(await countNotifications(db.sql)).toBe(before);
  });

  it("does not answer a send-only key the address a notification took from the user's profile, which it cannot read", async () => {
    const sender = await createApiKey(db.sql, 'sender-addresses', ['send']);
    const both = await createApiKey(db.sql, 'sender-reader', ['send', 'read']);
    const address = 'https://hooks.example.com/alice-private-endpoint';
    const profile = await api.app.request('/users/u-address', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${sender.key}` },
      body: JSON.stringify({ webhook_url: address }),
    });
    expect(profile.status).toBe(200);
    expect((await get('/users/u-address', sender.key)).status).toBe(403);

    const webhook = { user_id: 'u-address', type: 'WEBHOOK', body: 'hello' };
    const sent = await post(sender.key, webhook);
    expect(sent.status).toBe(201);
    const answer = (await sent.json()) as { id: string; to: string | null };
    expect(answer.to).toBeNull();
    expect(JSON.stringify(answer)).not.toContain(address);
    // It was stored and is delivered there; a key that may read sees it.
    const read = (await (await get(`/notifications/${answer.id}`, both.key)).json()) as { to: string };
    expect(read.to).toBe(address);
    expect(((await (await post(both.key, webhook)).json()) as { to: string }).to).toBe(address);

    // An idempotent repeat answers the same way.
    const key = `k-${answer.id}`;
    const keyed = { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sender.key}`, 'idempotency-key': key }, body: JSON.stringify(webhook) };
    expect(((await (await api.app.request('/notifications', keyed)).json()) as { to: string | null }).to).toBeNull();
    const repeat = await api.app.request('/notifications', keyed);
    expect(repeat.status).toBe(200);
    expect(((await repeat.json()) as { to: string | null }).to).toBeNull();

    // The request's own `to` the sender knows already: answered as it is.
    const own = 'https://hooks.example.com/given-in-the-request';
    expect(((await (await post(sender.key, { ...webhook, to: own })).json()) as { to: string }).to).toBe(own);
  });

  it('guards every producer route: profiles, topics, fan-outs, the producer inbox view', async () => {
    const reader = await createApiKey(db.sql, 'reader-2', ['read']);
    for (const path of ['/users/u-auth', '/users/u-auth/inbox', '/users/u-auth/preferences', '/topics/t1', '/fanouts/6f9619ff-8b86-d011-b42d-00c04fc964ff']) {
      expect((await get(path)).status, path).toBe(401);
      expect((await get(path, reader.key)).status, path).not.toBe(401);
    }
    const put = await api.app.request('/topics/t1/subscribers', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${reader.key}` },
      body: JSON.stringify({ user_ids: ['a'] }),
    });
    expect(put.status).toBe(403);
  });

  it('lets an admin key do everything', async () => {
    const admin = await createApiKey(db.sql, 'ops', ['admin']);
    const created = await post(admin.key);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await get(`/notifications/${id}`, admin.key)).status).toBe(200);
  });

  it('keeps health checks and the end users\' token-guarded inbox free of API keys', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const token = await issueToken('u-auth', SECRET, 60);
    expect((await get('/inbox', token)).status).toBe(200);
  });

  it('stores only a hash of each key, and a running API stops taking a revoked one within its cache time', async () => {
    const { key, row } = await createApiKey(db.sql, 'to-revoke', ['send', 'read']);
    const stored = await db.sql`select * from api_keys where id = ${row.id}`;
    expect(JSON.stringify(stored)).not.toContain(key);
    expect(row.prefix).toBe(key.slice(0, row.prefix.length));

    expect((await post(key)).status).toBe(201);
    expect(await revokeApiKey(db.sql, row.prefix)).toHaveLength(1);
    // The running API remembers the key's check for CACHE_TTL_MS; once that has passed (the clock
    // is moved on rather than waited for) it asks PostgreSQL again and refuses the key.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + CACHE_TTL_MS + 1);
      const res = await post(key);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('revoked');
    } finally {
      vi.useRealTimers();
    }
    // A fresh process has nothing remembered.
    const fresh = await buildApi(db, { env: { AUTH_DISABLED: 'false' } });
    try {
      const res = await fresh.app.request('/notifications', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(notification),
      });
      expect(res.status).toBe(401);
    } finally {
      await fresh.close();
    }
  });

  it('answers 503, not 401, when PostgreSQL cannot check the key', async () => {
    const { key } = await createApiKey(db.sql, 'pg-down', ['send']);
    const broken = await buildApi(db, { env: { AUTH_DISABLED: 'false', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' }, requestTimeoutMs: 500 });
    try {
      expect((await broken.app.request('/notifications', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(notification) })).status).toBe(503);
    } finally {
      await broken.close();
    }
  });
});
