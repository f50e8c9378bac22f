import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectDatabase } from '../../internal/platform/database.ts';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { IdempotencyKeyCleaner } from '../../internal/worker/maintenance/idempotencyKeyCleaner.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { useTestApi } from './helpers.ts';

interface Created {
  id: string;
  status: string;
}

describe('Idempotency-Key on POST /notifications', () => {
  const db = useTestDatabase();
  // Room for every concurrent request in the race below to hold its own connection.
  const api = useTestApi(db, () => ({ sql: connectDatabase(db.url, { max: 25 }) }));

  async function postRaw(raw: string, key: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key !== undefined) headers['idempotency-key'] = key;
    return await api.app.request('/notifications', { method: 'POST', headers, body: raw });
  }

  async function rowsForUser(userId: string): Promise<string[]> {
    const rows = await db.sql<{ id: string }[]>`select id from notifications where user_id = ${userId}`;
    return rows.map((r) => r.id);
  }

  async function queueEntries(id: string): Promise<number> {
    return (await api.redis.lrange(api.keys.queue, 0, -1)).filter((e) => e === id).length;
  }

  it('answers a repeat with the same body, keys in another order, with 200 and the original notification', async () => {
    const key = randomUUID();
    const user = `idem-${randomUUID()}`;
    const first = await postRaw(
      `{"user_id":"${user}","type":"IN_APP","title":"T","body":"B","data":{"a":1,"b":{"c":2,"d":3}}}`,
      key,
    );
    expect(first.status).toBe(201);
    const original = (await first.json()) as Created;

    const repeat = await postRaw(
      `{"data":{"b":{"d":3,"c":2},"a":1},"body":"B","title":"T","type":"IN_APP","user_id":"${user}"}`,
      key,
    );
    expect(repeat.status).toBe(200);
    const again = (await repeat.json()) as Created;
    expect(again).toEqual(original);
    expect(repeat.headers.get('location')).toBe(`/notifications/${original.id}`);

    expect(await rowsForUser(user)).toEqual([original.id]);
    expect(await queueEntries(original.id)).toBe(1);
    const [stored] = await db.sql<{ notification_id: string }[]>`select notification_id from idempotency_keys where key = ${key}`;
    expect(stored!.notification_id).toBe(original.id);
  });

  it('refuses the same key with a different body with 422 and stores nothing', async () => {
    const key = randomUUID();
    const user = `idem-${randomUUID()}`;
    const first = await postRaw(JSON.stringify({ user_id: user, type: 'IN_APP', body: 'one' }), key);
    expect(first.status).toBe(201);
    const original = (await first.json()) as Created;

    const conflict = await postRaw(JSON.stringify({ user_id: user, type: 'IN_APP', body: 'two' }), key);
    expect(conflict.status).toBe(422);
    const body = (await conflict.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('idempotency_key_reused');
    expect(body.error.message).toContain(key);

    expect(await rowsForUser(user)).toEqual([original.id]);
    const [row] = await db.sql<{ body: string }[]>`select body from notifications where id = ${original.id}`;
    expect(row!.body).toBe('one');
    expect(await queueEntries(original.id)).toBe(1);
  });

  it('treats different keys as different notifications', async () => {
    const user = `idem-${randomUUID()}`;
    const raw = JSON.stringify({ user_id: user, type: 'IN_APP', body: 'same' });
    const a = (await (await postRaw(raw, randomUUID())).json()) as Created;
    const b = (await (await postRaw(raw, randomUUID())).json()) as Created;
    expect(a.id).not.toBe(b.id);
    expect((await rowsForUser(user)).sort()).toEqual([a.id, b.id].sort());
  });

  it('creates a new notification for every request without a key', async () => {
    const user = `idem-${randomUUID()}`;
    const raw = JSON.stringify({ user_id: user, type: 'IN_APP', body: 'same' });
    const statuses = [(await postRaw(raw, undefined)).status, (await postRaw(raw, undefined)).status];
    expect(statuses).toEqual([201, 201]);
    expect(await rowsForUser(user)).toHaveLength(2);
  });

  it('creates exactly one notification for 20 concurrent requests with one key, and every answer names it', async () => {
    const key = randomUUID();
    const user = `race-${randomUUID()}`;
    const raw = JSON.stringify({ user_id: user, type: 'IN_APP', title: 'race', body: 'B' });
    const responses = await Promise.all(Array.from({ length: 20 }, () => postRaw(raw, key)));
    const statuses = responses.map((r) => r.status);
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Created[];

    expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    const ids = new Set(bodies.map((b) => b.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];

    expect(await rowsForUser(user)).toEqual([id]);
    expect(await queueEntries(id!)).toBe(1);
    const [keys] = await db.sql<{ n: number }[]>`select count(*)::int as n from idempotency_keys where key = ${key}`;
    expect(keys!.n).toBe(1);
  });

  it('forgets a key older than 24 hours when the key cleaner runs, so the same request then creates a new notification', async () => {
    const cleaner = new IdempotencyKeyCleaner({ sql: db.sql });
    const oldKey = randomUUID();
    const recentKey = randomUUID();
    const user = `idem-${randomUUID()}`;
    const raw = JSON.stringify({ user_id: user, type: 'IN_APP', body: 'x' });
    const recentRaw = JSON.stringify({ user_id: user, type: 'IN_APP', body: 'recent' });
    const first = await postRaw(raw, oldKey);
    expect(first.status).toBe(201);
    const original = (await first.json()) as Created;
    const recent = (await (await postRaw(recentRaw, recentKey)).json()) as Created;
    await db.sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = ${oldKey}`;
    await db.sql`update idempotency_keys set created_at = now() - interval '23 hours' where key = ${recentKey}`;

    await cleaner.run();

    const kept = await db.sql<{ key: string }[]>`select key from idempotency_keys where key in (${oldKey}, ${recentKey})`;
    expect(kept.map((k) => k.key)).toEqual([recentKey]);
    const repeat = await postRaw(raw, oldKey);
    expect(repeat.status).toBe(201);
    const created = (await repeat.json()) as Created;
    expect(created.id).not.toBe(original.id);
    const recentRepeat = await postRaw(recentRaw, recentKey);
    expect(recentRepeat.status).toBe(200);
    expect(((await recentRepeat.json()) as Created).id).toBe(recent.id);
    expect((await rowsForUser(user)).sort()).toEqual([original.id, recent.id, created.id].sort());
  });
});

describe('Idempotency-Keys are each API key\'s own', () => {
  const db = useTestDatabase();
  const api = useTestApi(db, { env: { AUTH_DISABLED: 'false' } });

  async function post(apiKey: string, body: Record<string, unknown>, key: string): Promise<{ status: number; id: string }> {
    const res = await api.app.request('/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { status: res.status, id: ((await res.json()) as { id: string }).id };
  }

  it('lets two API keys use the same Idempotency-Key without seeing or colliding with each other\'s notification', async () => {
    const a = await createApiKey(db.sql, 'producer-a', ['send']);
    const b = await createApiKey(db.sql, 'producer-b', ['send']);
    const key = `order-${randomUUID()}`;
    const body = { user_id: `idem-${randomUUID()}`, type: 'IN_APP', body: 'shipped' };

    const first = await post(a.key, body, key);
    expect(first.status).toBe(201);
    // The same key and body from another API key is another notification, not A's.
    const other = await post(b.key, body, key);
    expect(other.status).toBe(201);
    expect(other.id).not.toBe(first.id);
    // Each key's own repeat is answered from its own first request.
    expect(await post(a.key, body, key)).toEqual({ status: 200, id: first.id });
    expect(await post(b.key, body, key)).toEqual({ status: 200, id: other.id });
    expect((await post(a.key, { ...body, body: 'different' }, key)).status).toBe(422);

    // A key A used is no conflict for B with another body: B cannot learn that A used it.
    const used = `order-${randomUUID()}`;
    expect((await post(a.key, body, used)).status).toBe(201);
    expect((await post(b.key, { ...body, body: 'something else' }, used)).status).toBe(201);
  });

  it('answers a key stored before keys were scoped only to an exact repeat, from any API key', async () => {
    const producer = await createApiKey(db.sql, 'producer-c', ['send']);
    const body = { user_id: `idem-${randomUUID()}`, type: 'IN_APP', body: 'sent before the upgrade' };
    const first = await post(producer.key, body, `before-${randomUUID()}`);
    // As migration 007 leaves a key stored before it: no owner that can be known.
    const key = `legacy-${randomUUID()}`;
    await db.sql`update idempotency_keys set owner = 'before-scoping', key = ${key} where notification_id = ${first.id}`;

    const other = await createApiKey(db.sql, 'producer-d', ['send']);
    expect(await post(other.key, body, key), 'a retry sent across the upgrade creates nothing').toEqual({ status: 200, id: first.id });
    const differentBody = await post(other.key, { ...body, body: 'another request' }, key);
    expect(differentBody.status, 'another body is no conflict, and does not see the old notification').toBe(201);
    expect(differentBody.id).not.toBe(first.id);
  });
});
