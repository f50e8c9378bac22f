import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import type { Channel } from '../../internal/domain/notification.ts';
import { recordFailure } from '../../internal/repository/completions.ts';
import { claimOne } from '../support/claims.ts';
import { runScript } from '../support/serviceProcess.ts';
import { useTestDatabase, type FileDatabase } from '../support/fileDatabase.ts';
import { serviceEnv } from '../support/testEnvironment.ts';
import { insertPending, rowOf, sendJson, useTestApi } from './helpers.ts';

const LEASE_MS = 30_000;

interface AttemptJson {
  attempt: number;
  worker_id: string | null;
  started_at: string;
  finished_at: string | null;
  outcome: string | null;
  error: string | null;
  lease_expires_at?: string;
}
interface Page {
  items: { id: string; type: string; status: string; error_reason: string; updated_at: string }[];
  next_cursor: string | null;
}
interface ReplayRow {
  requested_by: string;
  filter: Record<string, unknown>;
  count: number;
  dry_run: boolean;
}

/** A FAILED row as a worker leaves it, failed at `failedAt` (an SQL timestamp, microseconds kept). */
async function failed(
  db: Pick<FileDatabase, 'sql'>,
  options: { type?: Channel; reason?: string; failedAt?: string; status?: string } = {},
): Promise<string> {
  const id = randomUUID();
  await db.sql`
    insert into notifications (id, user_id, type, body, recipient, status, retry_count, error_reason, sent_at, updated_at)
    values (${id}, 'dlq-user', ${options.type ?? 'WEBHOOK'}, 'b', 'https://example.com/hook', ${options.status ?? 'FAILED'}, 3,
            ${options.reason ?? 'webhook answered 500'}, ${options.status === 'SENT' ? db.sql`now()` : null},
            ${options.failedAt ?? '2026-01-01T00:00:00Z'}::text::timestamptz)`;
  return id;
}

async function replays(db: Pick<FileDatabase, 'sql'>): Promise<ReplayRow[]> {
  return db.sql<ReplayRow[]>`select requested_by, filter, count, dry_run from dead_letter_replays order by created_at`;
}

describe('admin API (auth off)', () => {
  const db = useTestDatabase();
  const api = useTestApi(db);
  beforeEach(async () => {
    await db.sql`truncate notifications, notification_attempts, idempotency_keys, inbox_items, dead_letter_replays`;
    await api.redis.del(api.keys.queue, api.keys.dlq);
  });

  const getJson = async <T>(path: string, status = 200): Promise<T> => {
    const res = await api.app.request(path);
    expect(res.status, path).toBe(status);
    return (await res.json()) as T;
  };

  describe('GET /notifications/:id/attempts', () => {
    it('lists the finished attempts in order, then the one under way with its worker, start and lease', async () => {
      // A channel delivered by an attempt: an IN_APP notification is delivered by its claim.
      const { id } = await insertPending(api.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
      for (const worker of ['w-1', 'w-2']) {
        const claimed = await claimOne(api.sql, id, worker, LEASE_MS);
        expect(claimed).toBeDefined();
        const failure = { reason: `${worker} got a 503`, permanent: false, maxRetries: 5, retryDelayMs: 0 };
        expect(await recordFailure(api.sql, { id, attempt: claimed!.attempt, workerId: worker }, failure)).toBe('PENDING');
      }
      await claimOne(api.sql, id, 'w-3', LEASE_MS);
      const row = await rowOf(api.sql, id);

      const body = await getJson<{ notification_id: string; status: string; attempts: AttemptJson[] }>(`/notifications/${id}/attempts`);
      expect(body.notification_id).toBe(id);
      expect(body.status).toBe('PROCESSING');
      expect(body.attempts.map((a) => [a.attempt, a.worker_id, a.outcome, a.error])).toEqual([
        [1, 'w-1', 'RETRY', 'w-1 got a 503'],
        [2, 'w-2', 'RETRY', 'w-2 got a 503'],
        [3, 'w-3', null, null],
      ]);
      expect(body.attempts[0]!.finished_at).not.toBeNull();
      expect(body.attempts[0]!.lease_expires_at).toBeUndefined();
      expect(body.attempts[2]).toMatchObject({
        started_at: row.claimed_at!.toISOString(),
        lease_expires_at: row.lease_expires_at!.toISOString(),
        finished_at: null,
      });
    });

    it('shows no attempt under way once the notification is finished, and none at all before its first', async () => {
      const { id } = await insertPending(api.sql, { type: 'WEBHOOK', recipient: 'https://example.com/hook' });
      expect((await getJson<{ attempts: AttemptJson[] }>(`/notifications/${id}/attempts`)).attempts).toEqual([]);
      const claimed = await claimOne(api.sql, id, 'w-1', LEASE_MS);
      await recordFailure(api.sql, { id, attempt: claimed!.attempt, workerId: 'w-1' }, { reason: 'refused', permanent: true, maxRetries: 3, retryDelayMs: 0 });
      const body = await getJson<{ status: string; attempts: AttemptJson[] }>(`/notifications/${id}/attempts`);
      expect(body.status).toBe('FAILED');
      expect(body.attempts.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'FAILED']]);
    });

    it('answers 404 for an unknown notification and 400 for an id that is not a UUID', async () => {
      expect((await getJson<{ error: { code: string } }>(`/notifications/${randomUUID()}/attempts`, 404)).error.code).toBe('not_found');
      expect((await getJson<{ error: { code: string } }>('/notifications/nope/attempts', 400)).error.code).toBe('invalid_id');
    });
  });

  describe('GET /admin/dead-letters', () => {
    it('lists FAILED rows only, newest failure first, from PostgreSQL while the Redis list is empty', async () => {
      const older = await failed(db, { failedAt: '2026-01-01T10:00:00Z' });
      const newer = await failed(db, { failedAt: '2026-01-02T10:00:00Z' });
      await failed(db, { status: 'SENT' });
      await insertPending(api.sql);
      expect(await api.redis.llen(api.keys.dlq)).toBe(0);

      const page = await getJson<Page>('/admin/dead-letters');
      expect(page.items.map((i) => i.id)).toEqual([newer, older]);
      expect(page.items[0]).toMatchObject({ status: 'FAILED', error_reason: 'webhook answered 500', updated_at: '2026-01-02T10:00:00.000Z' });
      expect(page.next_cursor).toBeNull();
    });

    it('filters by channel, by a case-insensitive substring of the error, and by failure time', async () => {
      const smsTimeout = await failed(db, { type: 'SMS', reason: 'SMS provider refused: 21211 Invalid To', failedAt: '2026-03-01T00:00:00Z' });
      const webhook = await failed(db, { type: 'WEBHOOK', reason: 'webhook answered 404', failedAt: '2026-03-02T00:00:00Z' });
      const smsLate = await failed(db, { type: 'SMS', reason: 'sms PROVIDER refused: 30003', failedAt: '2026-03-03T00:00:00Z' });
      const ids = async (query: string) => (await getJson<Page>(`/admin/dead-letters?${query}`)).items.map((i) => i.id);

      expect(await ids('channel=SMS')).toEqual([smsLate, smsTimeout]);
      expect(await ids('error=provider%20REFUSED')).toEqual([smsLate, smsTimeout]);
      expect(await ids('error=21211')).toEqual([smsTimeout]);
      expect(await ids('error=50%25')).toEqual([]); // % is a character here, not a wildcard
      // since is inclusive, until exclusive; offsets are honoured.
      expect(await ids('since=2026-03-02T00:00:00Z')).toEqual([smsLate, webhook]);
      expect(await ids('until=2026-03-02T00:00:00Z')).toEqual([smsTimeout]);
      expect(await ids('since=2026-03-01T01:00:00%2B01:00&until=2026-03-03T00:00:00Z')).toEqual([webhook, smsTimeout]);
      expect(await ids('channel=WEBHOOK&error=404&since=2026-03-01T12:00:00Z')).toEqual([webhook]);
      expect(await ids('channel=&error=')).toEqual([smsLate, webhook, smsTimeout]);
    });

    it('pages with a cursor, newest first, exactly once each, even for failures in the same millisecond', async () => {
      // Three rows within one millisecond: a cursor cut to milliseconds would skip or repeat them.
      const times = ['2026-02-01T00:00:00.000100Z', '2026-02-01T00:00:00.000200Z', '2026-02-01T00:00:00.000300Z', '2026-02-01T00:00:01Z', '2026-02-01T00:00:02Z'];
      const ids: string[] = [];
      for (const failedAt of times) ids.push(await failed(db, { failedAt }));
      ids.push(await failed(db, { failedAt: times[1] })); // same microsecond: the id breaks the tie
      const expected = (
        await db.sql<{ id: string }[]>`select id from notifications order by updated_at desc, id desc`
      ).map((r) => r.id);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Page = await getJson<Page>(`/admin/dead-letters?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((i) => i.id));
        cursor = page.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(expected);
      expect(new Set(seen)).toEqual(new Set(ids));
    });

    it.each([
      ['channel=FAX', 'channel'],
      ['error=%00', 'error'],
      ['since=yesterday', 'since'],
      ['since=2026-01-02T00:00:00', 'since'], // no offset: not RFC 3339
      ['since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z', 'until'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
    ])('answers 400 for ?%s', async (query, field) => {
      const body = await getJson<{ error: { code: string; message: string } }>(`/admin/dead-letters?${query}`, 400);
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.message).toContain(field);
    });
  });

  describe('POST /admin/dead-letters/replay', () => {
    const replay = (body: unknown) => sendJson(api.app, 'POST', '/admin/dead-letters/replay', body);

    it('replays the ids given: PENDING with a fresh retry budget, queued, off the list; others are skipped', async () => {
      const a = await failed(db);
      const b = await failed(db);
      const pending = await insertPending(api.sql);
      await api.redis.lpush(api.keys.dlq, a, b);

      const res = await replay({ ids: [a, b, pending.id, a] });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ dry_run: false, replayed: 2, skipped: 1 });
      for (const id of [a, b]) expect(await rowOf(api.sql, id)).toMatchObject({ status: 'PENDING', retry_count: 0, error_reason: null });
      expect((await api.redis.lrange(api.keys.queue, 0, -1)).sort()).toEqual([a, b].sort());
      expect(await api.redis.llen(api.keys.dlq)).toBe(0);
      expect(await replays(db)).toEqual([{ requested_by: 'unauthenticated', filter: { ids: [a, b, pending.id, a] }, count: 2, dry_run: false }]);
    });

    it('replays every FAILED row matching the filters and leaves the rest FAILED', async () => {
      const match = await failed(db, { type: 'SMS', reason: 'SMS provider answered 503', failedAt: '2026-04-02T00:00:00Z' });
      const tooOld = await failed(db, { type: 'SMS', reason: 'SMS provider answered 503', failedAt: '2026-03-01T00:00:00Z' });
      const otherError = await failed(db, { type: 'SMS', reason: 'invalid number', failedAt: '2026-04-02T00:00:00Z' });
      const otherChannel = await failed(db, { type: 'EMAIL', reason: 'SMTP answered 503', failedAt: '2026-04-02T00:00:00Z' });

      const filter = { channel: 'SMS', error: 'answered 503', since: '2026-04-01T00:00:00Z' };
      const res = await replay({ all: true, ...filter, dry_run: false });
      expect(await res.json()).toMatchObject({ replayed: 1, skipped: 0 });
      expect((await rowOf(api.sql, match)).status).toBe('PENDING');
      for (const id of [tooOld, otherError, otherChannel]) expect((await rowOf(api.sql, id)).status).toBe('FAILED');
      expect(await api.redis.lrange(api.keys.queue, 0, -1)).toEqual([match]);
      expect(await replays(db)).toEqual([{ requested_by: 'unauthenticated', filter: { all: true, ...filter }, count: 1, dry_run: false }]);
    });

    it('replays all of them past one batch of 500, each once (and counts them all on a dry run)', async () => {
      const count = 1234;
      await db.sql`
        insert into notifications (id, user_id, type, body, recipient, status, retry_count, error_reason, updated_at)
        select gen_random_uuid(), 'bulk-' || n, 'WEBHOOK', 'b', 'https://example.com/hook', 'FAILED', 3, 'webhook answered 500',
               '2026-01-01'::timestamptz + n * interval '1 millisecond'
        from generate_series(1, ${count}) as n`;
      // A dry run walks every batch too, though nothing it reads changes under it.
      expect(await (await replay({ all: true, dry_run: true })).json()).toMatchObject({ replayed: count, skipped: 0 });
      expect(await api.redis.llen(api.keys.queue)).toBe(0);
      const res = await replay({ all: true });
      expect(await res.json()).toMatchObject({ replayed: count, skipped: 0 });
      const queued = await api.redis.lrange(api.keys.queue, 0, -1);
      expect(queued).toHaveLength(count);
      expect(new Set(queued).size).toBe(count);
      const [left] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where status = 'FAILED'`;
      expect(left!.n).toBe(0);
    });

    it('changes nothing on a dry run but says how many it would replay, and records the dry run', async () => {
      const a = await failed(db, { type: 'PUSH' });
      const b = await failed(db, { type: 'PUSH' });
      const other = await failed(db, { type: 'EMAIL' });
      await api.redis.lpush(api.keys.dlq, a, b, other);
      const before = await db.sql`select * from notifications order by id`;

      expect(await (await replay({ all: true, channel: 'PUSH', dry_run: true })).json()).toMatchObject({ dry_run: true, replayed: 2 });
      expect(await (await replay({ ids: [a, other, randomUUID()], dry_run: true })).json()).toMatchObject({ dry_run: true, replayed: 2, skipped: 1 });

      expect(await db.sql`select * from notifications order by id`).toEqual(before);
      expect(await api.redis.llen(api.keys.queue)).toBe(0);
      expect(await api.redis.lrange(api.keys.dlq, 0, -1)).toEqual([other, b, a]);
      expect((await replays(db)).map((r) => [r.count, r.dry_run])).toEqual([
        [2, true],
        [2, true],
      ]);
    });

    it.each([
      [{}, 'ids'],
      [{ all: false }, 'all'],
      [{ ids: [] }, 'ids'],
      [{ ids: ['not-a-uuid'] }, 'ids'],
      [{ ids: [randomUUID()], all: true }, 'ids'],
      [{ ids: [randomUUID()], channel: 'SMS' }, 'channel'],
      [{ all: true, since: 'last week' }, 'since'],
      [{ all: true, dry_run: 'yes' }, 'dry_run'],
    ])('answers 400 for %j, replaying and recording nothing', async (body, field) => {
      const id = await failed(db);
      const res = await replay(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(field);
      expect((await rowOf(api.sql, id)).status).toBe('FAILED');
      expect(await replays(db)).toEqual([]);
    });
  });

  it('npm run dlq -- replay records its replays as the script', async () => {
    const id = await failed(db);
    const result = await runScript('dlq', ['replay', id], serviceEnv(db, api.keys));
    expect(result.code, result.stdout).toBe(0);
    const dryRun = await runScript('dlq', ['replay', '--all', '--dry-run'], serviceEnv(db, api.keys));
    expect(dryRun.code, dryRun.stdout).toBe(0);
    expect(await replays(db)).toEqual([
      { requested_by: 'script', filter: { ids: [id] }, count: 1, dry_run: false },
      { requested_by: 'script', filter: { all: true, list: api.keys.dlq }, count: 0, dry_run: true },
    ]);
  });
});

describe('admin API with API keys', () => {
  const db = useTestDatabase();
  const api = useTestApi(db, { env: { AUTH_DISABLED: 'false' } });

  const get = (path: string, key?: string) => api.app.request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const replay = (body: unknown, key?: string) =>
    sendJson(api.app, 'POST', '/admin/dead-letters/replay', body, key ? { authorization: `Bearer ${key}` } : {});

  it('takes an admin key only: 401 without one, 403 for a read or send key, changing nothing', async () => {
    const reader = await createApiKey(db.sql, 'dashboards', ['read']);
    const sender = await createApiKey(db.sql, 'billing', ['send', 'read']);
    const id = await failed(db);

    expect((await get('/admin/dead-letters')).status).toBe(401);
    expect((await replay({ ids: [id] })).status).toBe(401);
    for (const key of [reader.key, sender.key]) {
      const listed = await get('/admin/dead-letters', key);
      expect(listed.status).toBe(403);
      expect(((await listed.json()) as { error: { message: string } }).error.message).toContain('"admin" scope');
      expect((await replay({ ids: [id] }, key)).status).toBe(403);
    }
    expect((await rowOf(db.sql, id)).status).toBe('FAILED');
    expect(await replays(db)).toEqual([]);
  });

  it("records a replay under the admin key's name", async () => {
    const admin = await createApiKey(db.sql, 'ops-alice', ['admin']);
    const id = await failed(db);
    expect((await get('/admin/dead-letters', admin.key)).status).toBe(200);
    const res = await replay({ ids: [id], dry_run: true }, admin.key);
    expect(res.status).toBe(200);
    const { replay_id } = (await res.json()) as { replay_id: string };
    const [row] = await db.sql<(ReplayRow & { id: string })[]>`select * from dead_letter_replays where id = ${replay_id}`;
    expect(row).toMatchObject({ requested_by: 'ops-alice', filter: { ids: [id] }, count: 1, dry_run: true });
  });

  it('lets a read key (and an admin key) read attempts, not a send-only key', async () => {
    const reader = await createApiKey(db.sql, 'reader', ['read']);
    const sender = await createApiKey(db.sql, 'sender', ['send']);
    const admin = await createApiKey(db.sql, 'ops', ['admin']);
    const { id } = await insertPending(db.sql);
    expect((await get(`/notifications/${id}/attempts`)).status).toBe(401);
    expect((await get(`/notifications/${id}/attempts`, sender.key)).status).toBe(403);
    expect((await get(`/notifications/${id}/attempts`, reader.key)).status).toBe(200);
    expect((await get(`/notifications/${id}/attempts`, admin.key)).status).toBe(200);
  });
});
