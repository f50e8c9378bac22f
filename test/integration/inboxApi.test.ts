import { sign } from 'hono/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../internal/service/endUserToken.ts';
import type { InboxItem, InboxItemJson } from '../../internal/domain/inboxItem.ts';
import { deliverToInboxes } from '../support/claims.ts';
import { createTestDatabase, type TestDatabase } from '../support/testEnvironment.ts';
import { buildApi, insertPending, type TestApi } from './helpers.ts';

const SECRET = 'inbox-api-test-secret-0123456789abcdef';
const OTHER_SECRET = 'another-secret-of-enough-length-fedcba9876543210';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface Listing {
  items: InboxItemJson[];
  next_cursor: string | null;
  unread: number;
}
interface ErrorJson {
  error: { code: string; message: string };
}

describe('the end-user inbox API', () => {
  let db: TestDatabase;
  let api: TestApi;
  /** The same database behind an API without INBOX_JWT_SECRET. */
  let apiOff: TestApi;
  /** Each test's users are its own, so the tests share one database without seeing each other. */
  let users = 0;
  const newUser = (name: string) => `${name}-${++users}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await buildApi(db, { env: { INBOX_JWT_SECRET: SECRET } });
    apiOff = await buildApi(db);
  });
  afterAll(async () => {
    await apiOff?.close();
    await api?.close();
    await db?.drop();
  });

  /**
   * Delivers `count` IN_APP notifications to `userId` as a worker does: PENDING rows, claimed in one
   * batch that stores their inbox items and records them SENT. Returns the items in seq order.
   */
  async function deliver(userId: string, count: number): Promise<InboxItem[]> {
    const rows = [];
    for (let i = 0; i < count; i++) rows.push(await insertPending(db.sql, { user_id: userId, title: `t${i}`, body: `b${i}`, data: { i } }));
    const items = (await deliverToInboxes(db.sql, rows.map((r) => r.id))).flatMap(({ item }) => (item ? [item] : []));
    expect(items).toHaveLength(count);
    return items.sort((a, b) => a.seq - b.seq);
  }

  async function token(userId: string): Promise<string> {
    return issueToken(userId, SECRET, 3600);
  }

  async function call(path: string, userId: string | undefined, init: RequestInit = {}, app = api): Promise<Response> {
    const headers = new Headers(init.headers);
    if (userId !== undefined) headers.set('authorization', `Bearer ${await token(userId)}`);
    return app.app.request(path, { ...init, headers });
  }

  async function list(userId: string, query = ''): Promise<Listing> {
    const res = await call(`/inbox${query}`, userId);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Listing;
  }

  /** Every page of the listing, following next_cursor; fails on a loop. */
  async function allPages(userId: string, limit: number, extra = ''): Promise<Listing[]> {
    const pages: Listing[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(userId, `?limit=${limit}${extra}${cursor === null ? '' : `&cursor=${cursor}`}`);
      pages.push(page);
      cursor = page.next_cursor;
      expect(pages.length, 'pages of the listing').toBeLessThan(50);
    } while (cursor !== null);
    return pages;
  }

  async function unread(userId: string): Promise<number> {
    const res = await call('/inbox/unread_count', userId);
    expect(res.status).toBe(200);
    return ((await res.json()) as { unread: number }).unread;
  }

  const post = (path: string, userId: string) => call(path, userId, { method: 'POST' });

  async function stored(id: string): Promise<{ read_at: Date | null; archived_at: Date | null }> {
    const [row] = await db.sql<{ read_at: Date | null; archived_at: Date | null }[]>`
      select read_at, archived_at from inbox_items where notification_id = ${id}`;
    if (!row) throw new Error(`no inbox item ${id}`);
    return row;
  }

  describe('authentication', () => {
    async function expectRefused(res: Response, mentioning: RegExp): Promise<void> {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await res.json()) as ErrorJson;
      expect(body.error.code).toBe('unauthorized');
      expect(body.error.message).toMatch(mentioning);
    }

    it('answers 401 without a token, on every route', async () => {
      for (const [method, path] of [
        ['GET', '/inbox'],
        ['GET', '/inbox/unread_count'],
        ['POST', '/inbox/read_all'],
        ['POST', `/inbox/${UNKNOWN_ID}/read`],
        ['POST', `/inbox/${UNKNOWN_ID}/archive`],
        ['GET', '/inbox/stream'],
        ['GET', '/inbox/ws'],
      ] as const) {
        await expectRefused(await api.app.request(path, { method }), /Authorization: Bearer/);
      }
    });

    it('answers 401 to a malformed, expired, not yet valid or wrongly signed token, or one without a user', async () => {
      const now = Math.floor(Date.now() / 1000);
      const refused = [
        'not-a-jwt',
        await sign({ sub: 'u', exp: now - 60 }, SECRET, 'HS256'),
        await sign({ sub: 'u', nbf: now + 3600, exp: now + 7200 }, SECRET, 'HS256'),
        await issueToken('u', OTHER_SECRET, 3600),
        await sign({ sub: 'u', exp: now + 3600 }, SECRET, 'HS512'),
        await sign({ exp: now + 3600 }, SECRET, 'HS256'),
        await sign({ sub: '', exp: now + 3600 }, SECRET, 'HS256'),
      ];
      for (const t of refused) {
        await expectRefused(await api.app.request('/inbox', { headers: { authorization: `Bearer ${t}` } }), /inbox token refused/);
      }
    });

    it('takes ?access_token= only on the live routes, where browsers cannot set headers', async () => {
      const t = await token(newUser('query'));
      await expectRefused(await api.app.request(`/inbox?access_token=${t}`), /Authorization: Bearer/);
      // Past authentication the live routes need the Pub/Sub hub, which this in-process API lacks.
      for (const path of ['/inbox/stream', '/inbox/ws']) {
        const res = await api.app.request(`${path}?access_token=${t}`);
        expect(res.status, path).toBe(503);
        expect(((await res.json()) as ErrorJson).error.code).toBe('unavailable');
      }
    });

    it('answers 404 saying how to turn it on when INBOX_JWT_SECRET is not set', async () => {
      for (const init of [{}, { headers: { authorization: `Bearer ${await token('u')}` } }]) {
        const res = await apiOff.app.request('/inbox', init);
        expect(res.status).toBe(404);
        const body = (await res.json()) as ErrorJson;
        expect(body.error.code).toBe('not_found');
        expect(body.error.message).toContain('INBOX_JWT_SECRET');
      }
    });
  });

  describe('listing', () => {
    it('lists newest first, and follows next_cursor across pages with no overlap and no gap', async () => {
      const user = newUser('pages');
      const items = [...(await deliver(user, 4)), ...(await deliver(user, 3))];
      const seqs = items.map((i) => i.seq);
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);

      const whole = await list(user);
      expect(whole.items.map((i) => i.seq)).toEqual([7, 6, 5, 4, 3, 2, 1]);
      expect(whole.next_cursor).toBeNull();
      expect(whole.unread).toBe(7);
      const newest = whole.items[0]!;
      expect(newest).toEqual({
        notification_id: items[6]!.notification_id,
        seq: 7,
        title: 't2',
        body: 'b2',
        data: { i: 2 },
        created_at: items[6]!.created_at.toISOString(),
        read_at: null,
        archived_at: null,
      });

      for (const limit of [1, 2, 3, 7]) {
        const pages = await allPages(user, limit);
        const listed = pages.flatMap((p) => p.items.map((i) => i.seq));
        expect(listed, `limit ${limit}`).toEqual([7, 6, 5, 4, 3, 2, 1]);
        for (const page of pages) expect(page.items.length).toBeLessThanOrEqual(limit);
      }
      expect((await allPages(user, 3)).map((p) => p.items.length)).toEqual([3, 3, 1]);
    });

    it('does not move under items arriving between pages: the next page goes on from the cursor', async () => {
      const user = newUser('arrivals');
      await deliver(user, 5);
      const first = await list(user, '?limit=2');
      expect(first.items.map((i) => i.seq)).toEqual([5, 4]);
      await deliver(user, 3);
      const second = await list(user, `?limit=2&cursor=${first.next_cursor}`);
      expect(second.items.map((i) => i.seq)).toEqual([3, 2]);
    });

    it('gives the next seq to items stored one by one and in batches alike', async () => {
      const user = newUser('mixed');
      await deliver(user, 2);
      const single = await insertPending(db.sql, { user_id: user, body: 'alone' });
      await deliverToInboxes(db.sql, [single.id]);
      await deliver(user, 1);
      const listed = (await list(user)).items;
      expect(listed.map((i) => [i.seq, i.body])).toEqual([
        [4, 'b0'],
        [3, 'alone'],
        [2, 'b1'],
        [1, 'b0'],
      ]);
    });

    // A seq burnt by a repeat would leave a gap (3, 5), which live sessions read as a lost message.
    it('a notification claimed again (a duplicate queue entry, in the same batch or a later one) takes no seq', async () => {
      const user = newUser('repeat');
      const single = await insertPending(db.sql, { user_id: user, body: 'once' });
      await deliverToInboxes(db.sql, [single.id, single.id]);
      await deliverToInboxes(db.sql, [single.id]);
      await deliver(user, 1);
      expect((await list(user)).items.map((i) => [i.seq, i.body])).toEqual([
        [2, 'b0'],
        [1, 'once'],
      ]);
    });

    it('filters unread items (paginated too) and counts them', async () => {
      const user = newUser('unread');
      const items = await deliver(user, 6);
      for (const seq of [2, 5]) expect((await post(`/inbox/${items[seq - 1]!.notification_id}/read`, user)).status).toBe(204);

      const unreadOnly = await list(user, '?unread=true');
      expect(unreadOnly.items.map((i) => i.seq)).toEqual([6, 4, 3, 1]);
      expect(unreadOnly.unread).toBe(4);
      const paged = await allPages(user, 3, '&unread=true');
      expect(paged.flatMap((p) => p.items.map((i) => i.seq))).toEqual([6, 4, 3, 1]);
      expect((await list(user, '?unread=false')).items).toHaveLength(6);
      expect(await unread(user)).toBe(4);
    });

    it('answers 400 to a bad limit, cursor or unread', async () => {
      const user = newUser('bad-query');
      for (const query of ['?limit=0', '?limit=201', '?limit=x', '?cursor=0', '?cursor=abc', '?unread=yes']) {
        const res = await call(`/inbox${query}`, user);
        expect(res.status, query).toBe(400);
        expect(((await res.json()) as ErrorJson).error.code).toBe('invalid_request');
      }
    });
  });

  describe('reading and archiving', () => {
    it('marks one item read, keeping the first time when read again', async () => {
      const user = newUser('read');
      const [a, b] = await deliver(user, 2);
      expect((await post(`/inbox/${a!.notification_id}/read`, user)).status).toBe(204);
      const firstRead = (await stored(a!.notification_id)).read_at;
      expect(firstRead).not.toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await post(`/inbox/${a!.notification_id}/read`, user)).status).toBe(204);
      expect((await stored(a!.notification_id)).read_at).toEqual(firstRead);
      expect((await stored(b!.notification_id)).read_at).toBeNull();

      const listed = (await list(user)).items;
      expect(listed.find((i) => i.seq === a!.seq)!.read_at).toBe(firstRead!.toISOString());
      expect(listed.find((i) => i.seq === b!.seq)!.read_at).toBeNull();
      expect(await unread(user)).toBe(1);
    });

    it('marks every unread item read at once, answering how many', async () => {
      const user = newUser('read-all');
      const items = await deliver(user, 5);
      await post(`/inbox/${items[0]!.notification_id}/read`, user);
      await post(`/inbox/${items[1]!.notification_id}/archive`, user);

      const res = await post('/inbox/read_all', user);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ marked: 3 });
      expect(await unread(user)).toBe(0);
      expect((await list(user, '?unread=true')).items).toEqual([]);
      expect(await (await post('/inbox/read_all', user)).json()).toEqual({ marked: 0 });
      // The archived one was not counted, and stays unread in the table.
      expect((await stored(items[1]!.notification_id)).read_at).toBeNull();
    });

    it('archives an item: it leaves the list and the unread count, and archiving again is harmless', async () => {
      const user = newUser('archive');
      const items = await deliver(user, 3);
      const target = items[1]!;
      expect((await post(`/inbox/${target.notification_id}/archive`, user)).status).toBe(204);
      const archivedAt = (await stored(target.notification_id)).archived_at;
      expect(archivedAt).not.toBeNull();

      const listing = await list(user);
      expect(listing.items.map((i) => i.seq)).toEqual([3, 1]);
      expect(listing.unread).toBe(2);
      expect(await unread(user)).toBe(2);
      expect((await allPages(user, 1)).flatMap((p) => p.items.map((i) => i.seq))).toEqual([3, 1]);

      expect((await post(`/inbox/${target.notification_id}/archive`, user)).status).toBe(204);
      expect((await stored(target.notification_id)).archived_at).toEqual(archivedAt);
    });

    it('answers 404 for an unknown item and 400 for an id that is not a UUID', async () => {
      const user = newUser('unknown');
      await deliver(user, 1);
      for (const action of ['read', 'archive']) {
        const missing = await post(`/inbox/${UNKNOWN_ID}/${action}`, user);
        expect(missing.status).toBe(404);
        expect(((await missing.json()) as ErrorJson).error.message).toContain(UNKNOWN_ID);
        const bad = await post(`/inbox/not-a-uuid/${action}`, user);
        expect(bad.status).toBe(400);
        expect(((await bad.json()) as ErrorJson).error.code).toBe('invalid_id');
      }
    });
  });

  describe('isolation between users', () => {
    it("shows a user only their own items, and answers 404 to reading or archiving another's", async () => {
      const alice = newUser('alice');
      const bob = newUser('bob');
      const aliceItems = await deliver(alice, 2);
      const bobItems = await deliver(bob, 3);
      // Each user's seq starts at 1: the numbering is per user.
      expect(bobItems.map((i) => i.seq)).toEqual([1, 2, 3]);

      const aliceIds = new Set(aliceItems.map((i) => i.notification_id));
      const listed = await list(alice);
      expect(new Set(listed.items.map((i) => i.notification_id))).toEqual(aliceIds);
      expect(listed.unread).toBe(2);
      expect((await allPages(alice, 1)).flatMap((p) => p.items.map((i) => i.notification_id)).every((id) => aliceIds.has(id))).toBe(true);

      for (const item of bobItems) {
        for (const action of ['read', 'archive']) {
          const res = await post(`/inbox/${item.notification_id}/${action}`, alice);
          expect(res.status, `${action} of bob's ${item.seq} by alice`).toBe(404);
          expect(((await res.json()) as ErrorJson).error.code).toBe('not_found');
        }
        expect(await stored(item.notification_id)).toEqual({ read_at: null, archived_at: null });
      }
      expect(await (await post('/inbox/read_all', alice)).json()).toEqual({ marked: 2 });
      expect(await unread(bob)).toBe(3);
      expect((await list(bob)).items.map((i) => i.seq)).toEqual([3, 2, 1]);
    });
  });

  describe("the producer's view", () => {
    it('GET /users/:id/inbox lists the same items, reads and archives as the end user sees them', async () => {
      const user = newUser('producer');
      const items = await deliver(user, 5);
      await post(`/inbox/${items[0]!.notification_id}/read`, user);
      await post(`/inbox/${items[3]!.notification_id}/archive`, user);

      for (const query of ['', '?limit=2', '?unread=true', '?limit=2&cursor=4']) {
        const endUser = await list(user, query);
        const res = await api.app.request(`/users/${user}/inbox${query}`);
        expect(res.status).toBe(200);
        expect(await res.json(), query).toEqual(endUser);
      }
      const producer = (await (await api.app.request(`/users/${user}/inbox`)).json()) as Listing;
      expect(producer.items.map((i) => [i.seq, i.read_at !== null])).toEqual([
        [5, false],
        [3, false],
        [2, false],
        [1, true],
      ]);
      expect(producer.unread).toBe(3);
      // It needs no end-user token, and works without INBOX_JWT_SECRET.
      expect(await (await apiOff.app.request(`/users/${user}/inbox`)).json()).toEqual(producer);
    });
  });
});
