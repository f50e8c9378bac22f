import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import type { Sql } from '../../internal/platform/database.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { useTestApi } from './helpers.ts';

interface Throughput {
  minutes: number;
  buckets: { minute: string; created: number; sent: number; failed: number }[];
}

const MINUTE_MS = 60_000;

/** PostgreSQL's current minute, truncated, as the route counts by it. */
async function currentMinute(sql: Sql): Promise<number> {
  const [row] = await sql<{ m: Date }[]>`select date_trunc('minute', now()) as m`;
  return row!.m.getTime();
}

/** A notification stored with the given times, as the lifecycle would have left it. */
async function stored(
  sql: Sql,
  row: { status: 'PENDING' | 'SENT' | 'FAILED' | 'SKIPPED'; created: number; finished?: number },
): Promise<void> {
  const finished = new Date(row.finished ?? row.created);
  await sql`
    insert into notifications (id, user_id, type, body, status, error_reason, sent_at, created_at, updated_at)
    values (${randomUUID()}, 'tp-user', 'IN_APP', 'b', ${row.status}, ${row.status === 'FAILED' ? 'refused' : null},
            ${row.status === 'SENT' ? finished : null}, ${new Date(row.created)}, ${finished})`;
}

const db = useTestDatabase();

describe('GET /admin/throughput (auth off)', () => {
  const api = useTestApi(db);
  beforeEach(async () => {
    await db.sql`truncate notifications cascade`;
  });

  async function throughput(query = ''): Promise<Throughput> {
    const res = await api.app.request(`/admin/throughput${query}`);
    expect(res.status, query).toBe(200);
    return (await res.json()) as Throughput;
  }

  /** Asks until the answer came within one minute of PostgreSQL's clock; returns it with that minute. */
  async function withinOneMinute(query: string): Promise<{ now: number; body: Throughput }> {
    for (;;) {
      const before = await currentMinute(db.sql);
      const body = await throughput(query);
      if ((await currentMinute(db.sql)) === before) return { now: before, body };
    }
  }

  it('counts per minute what was created, sent and failed, every minute present, the current one last', async () => {
    const m = await currentMinute(db.sql);
    const at = (minutesAgo: number, seconds: number) => m - minutesAgo * MINUTE_MS + seconds * 1000;
    await stored(db.sql, { status: 'SENT', created: at(5, 10), finished: at(5, 40) });
    await stored(db.sql, { status: 'SENT', created: at(5, 20), finished: at(4, 5) });
    await stored(db.sql, { status: 'FAILED', created: at(4, 10), finished: at(2, 30) });
    await stored(db.sql, { status: 'FAILED', created: at(3, 50), finished: at(3, 55) });
    await stored(db.sql, { status: 'PENDING', created: at(2, 0) });
    await stored(db.sql, { status: 'SKIPPED', created: at(2, 15), finished: at(2, 16) });
    // Created before the window, sent within it: counted as sent only.
    await stored(db.sql, { status: 'SENT', created: at(30, 0), finished: at(1, 10) });
    // A replayed dead letter is PENDING again: not counted as failed.
    await stored(db.sql, { status: 'PENDING', created: at(40, 0), finished: at(1, 20) });
    // Before the window altogether.
    await stored(db.sql, { status: 'FAILED', created: at(40, 0), finished: at(40, 30) });
    await stored(db.sql, { status: 'SENT', created: at(16, 0), finished: at(15, 59) });

    const { now, body } = await withinOneMinute('?minutes=15');
    expect(body.minutes).toBe(15);
    expect(body.buckets).toHaveLength(15);
    expect(body.buckets.map((b) => Date.parse(b.minute))).toEqual(Array.from({ length: 15 }, (_, i) => now - (14 - i) * MINUTE_MS));
    const byMinute = Object.fromEntries(body.buckets.map((b) => [(now - Date.parse(b.minute)) / MINUTE_MS, [b.created, b.sent, b.failed]]));
    const zero = [0, 0, 0];
    expect(byMinute).toEqual({
      ...Object.fromEntries(Array.from({ length: 15 }, (_, i) => [i, zero])),
      5: [2, 1, 0],
      4: [1, 1, 0],
      3: [1, 0, 1],
      2: [2, 0, 1],
      1: [0, 1, 0],
    });
  });

  it('answers the minutes asked for, 15 by default, and counts the current minute so far', async () => {
    // Stored at the start of the database's current minute, so it is in that minute whatever the
    // clocks; if the minute turns before the answer, the next minute is tried with a row of its own.
    for (let tries = 1; ; tries++) {
      const m = await currentMinute(db.sql);
      await stored(db.sql, { status: 'SENT', created: m, finished: m });
      const body = await throughput('?minutes=1');
      if ((await currentMinute(db.sql)) !== m && tries < 3) continue;
      expect(body).toEqual({ minutes: 1, buckets: [{ minute: new Date(m).toISOString(), created: 1, sent: 1, failed: 0 }] });
      break;
    }
    expect((await throughput()).buckets).toHaveLength(15);
    expect((await throughput('?minutes=180')).buckets).toHaveLength(180);
  });

  it.each(['minutes=0', 'minutes=181', 'minutes=1.5', 'minutes=x'])('answers 400 for ?%s', async (query) => {
    const res = await api.app.request(`/admin/throughput?${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toContain('minutes');
  });
});

describe('the dashboard and its throughput with API keys on', () => {
  const api = useTestApi(db, { env: { AUTH_DISABLED: 'false' } });

  const get = (path: string, key?: string) => api.app.request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it('asks for the admin scope on /admin/throughput: 401 without a key or with an unknown one, 403 with another scope', async () => {
    const { key: producer } = await createApiKey(db.sql, 'producer', ['send', 'read']);
    const { key: ops } = await createApiKey(db.sql, 'ops', ['admin']);
    const anonymous = await get('/admin/throughput');
    expect(anonymous.status).toBe(401);
    expect(await codeOf(anonymous)).toBe('unauthorized');
    expect((await get('/admin/throughput', 'hk_not-a-key-anyone-was-given')).status).toBe(401);
    const other = await get('/admin/throughput', producer);
    expect(other.status).toBe(403);
    expect(await codeOf(other)).toBe('forbidden');
    const allowed = await get('/admin/throughput?minutes=2', ops);
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as Throughput).buckets).toHaveLength(2);
  });

  it('serves the dashboard page without a key, framed by nobody, and only that path', async () => {
    const page = await get('/admin/dashboard');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[^']+'.*frame-ancestors 'none'/);
    const html = await page.text();
    expect(html).toContain('<script type="module">');
    // No data in the page, and nothing loaded from elsewhere.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const path of ['/admin/dashboard/', '/admin/dashboardx', '/admin/dead-letters', '/admin/throughput', '/admin']) {
      expect((await get(path)).status, path).toBe(401);
    }
  });
});
