import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import webpush from 'web-push';
import { connectDatabase } from '../../internal/platform/database.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import type { FanoutJson, FanoutWithMembersJson } from '../../internal/domain/fanout.ts';
import { FanoutRunner } from '../../internal/worker/fanoutRunner.ts';
import { PushService } from '../support/pushService.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { fixtureValue } from '../support/fixtureValue.ts';
import { countRows, expectRefusal, sendJson, silentLogger, useTestApi, type ErrorResponse, type TestApi } from './helpers.ts';

const STORED_TABLES = ['notifications', 'fanouts', 'idempotency_keys', 'topic_subscriptions'];

/** EMAIL, SMS and PUSH configured; nothing is delivered here, so the SMTP server need not exist. */
const PROVIDERS_ENV = {
  SMTP_URL: 'smtp://127.0.0.1:1',
  EMAIL_FROM: 'Herald <a@b.example>',
  SMS_ACCOUNT_SID: 'AC00000000000000000000000000000000',
  SMS_AUTH_TOKEN: 'token',
  SMS_FROM: '+15005550006',
  ...(() => {
    const keys = webpush.generateVAPIDKeys();
    return { VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'mailto:ops@example.com' };
  })(),
};

/** A fan-out as the API answers it; `notifications` only for a list of user_ids. */
type FanoutBody = FanoutJson & Partial<Pick<FanoutWithMembersJson, 'notifications'>>;
type Member = FanoutWithMembersJson['notifications'][number];

describe('fan-out on POST /notifications', () => {
  const db = useTestDatabase();
  /** EMAIL, SMS and PUSH configured; room for every concurrent request of the idempotency race to hold its own connection. */
  const api = useTestApi(db, () => ({ env: PROVIDERS_ENV, sql: connectDatabase(db.url, { max: 20 }) }));
  /** Only IN_APP and WEBHOOK, as a server without provider variables. */
  const bare = useTestApi(db);
  const push = fixtureValue('the push service', 'file', () => PushService.start(), (service) => service.close());

  const post = (body: unknown, headers: Record<string, string> = {}, on: TestApi = api) =>
    sendJson(on.app, 'POST', '/notifications', body, headers);

  const putProfile = (userId: string, profile: Record<string, unknown>) =>
    sendJson(api.app, 'PUT', `/users/${encodeURIComponent(userId)}`, profile);

  async function queueLength(on: TestApi = api): Promise<number> {
    return api.redis.llen(on.keys.queue);
  }

  /** Sends `request`, expects `status` and `code`, and checks nothing was stored and nothing queued. */
  const expectRefused = (request: () => Response | Promise<Response>, status: number, code: string) =>
    expectRefusal(request, { status, code }, async () => [await countRows(db.sql, STORED_TABLES), await queueLength(api), await queueLength(bare)]);

  /** `count` new users with an email (and a phone) on file. */
  async function usersWithEmail(count: number, prefix = 'mail'): Promise<string[]> {
    const users = Array.from({ length: count }, (_, i) => `${prefix}-${randomUUID()}-${i}`);
    for (const [i, user] of users.entries()) {
      expect((await putProfile(user, { email: `${user}@example.com`, phone: `+1415555${String(1000 + i).slice(-4)}` })).status).toBe(200);
    }
    return users;
  }

  async function notificationsOfFanout(fanoutId: string): Promise<NotificationRow[]> {
    return db.sql<NotificationRow[]>`select * from notifications where fanout_id = ${fanoutId} order by user_id`;
  }

  function runner(on: TestApi = api): FanoutRunner {
    return new FanoutRunner({ sql: on.sql, renewals: on.sql, queue: on.queue, workerId: 'api-test-runner', leaseMs: 30_000, intervalMs: 1000, logger: silentLogger() });
  }

  describe('request rules', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['no user_id, user_ids or topic', { type: 'IN_APP', body: 'b' }, 'user_id'],
      ['both user_id and user_ids', { user_id: 'a', user_ids: ['b'], type: 'IN_APP', body: 'b' }, 'user_id'],
      ['both user_id and topic', { user_id: 'a', topic: 't', type: 'IN_APP', body: 'b' }, 'user_id'],
      ['both user_ids and topic', { user_ids: ['a'], topic: 't', type: 'IN_APP', body: 'b' }, 'user_id'],
      ['an empty user_ids', { user_ids: [], type: 'IN_APP', body: 'b' }, 'user_ids'],
      ['1,001 user_ids', { user_ids: Array.from({ length: 1001 }, (_, i) => `u-${i}`), type: 'IN_APP', body: 'b' }, 'user_ids'],
      ['an empty user id among user_ids', { user_ids: ['a', ''], type: 'IN_APP', body: 'b' }, 'user_ids.1'],
      ['"to" with user_ids', { user_ids: ['a'], type: 'WEBHOOK', body: 'b', to: 'https://example.com/h' }, 'to'],
      ['"to" with a topic', { topic: 'news', type: 'WEBHOOK', body: 'b', to: 'https://example.com/h' }, 'to'],
      ['html on an SMS', { user_id: 'a', type: 'SMS', body: 'b', to: '+14155550100', html: '<p>b</p>' }, 'html'],
      ['html on an IN_APP to user_ids', { user_ids: ['a'], type: 'IN_APP', body: 'b', html: '<p>b</p>' }, 'html'],
      ['critical that is not a boolean', { user_id: 'a', type: 'IN_APP', body: 'b', critical: 'yes' }, 'critical'],
      ['a topic key with spaces', { topic: 'bad key', type: 'IN_APP', body: 'b' }, 'topic'],
    ])('refuses %s with 400 invalid_request and stores nothing', async (_, body, field) => {
      const refused = await expectRefused(() => post(body), 400, 'invalid_request');
      expect(refused.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field })]));
    });

    it('refuses an SMS too long for any user, to a list or a topic, and stores nothing', async () => {
      const users = await usersWithEmail(2, 'long-sms');
      const body = 'x'.repeat(1601);
      for (const target of [{ user_id: users[0] }, { user_ids: users }, { topic: 'long-sms-topic' }]) {
        const refused = await expectRefused(() => post({ ...target, type: 'SMS', body }), 400, 'invalid_request');
        expect(refused.error.details).toEqual([expect.objectContaining({ path: 'body' })]);
      }
    });

    it.each<[string, string]>([
      ['EMAIL', 'SMTP_URL and EMAIL_FROM'],
      ['SMS', 'SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM'],
      ['PUSH', 'VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT'],
    ])('refuses %s with 400 channel_not_configured naming its variables when they are not set', async (type, variables) => {
      const [user] = await usersWithEmail(1, 'unconfigured');
      for (const target of [{ user_id: user }, { user_ids: [user] }, { topic: 'unconfigured-topic' }]) {
        const refused = await expectRefused(() => post({ ...target, type, body: 'b' }, {}, bare), 400, 'channel_not_configured');
        expect(refused.error.message).toContain(variables);
      }
    });
  });

  describe('addresses from the user\'s profile', () => {
    it('sends an EMAIL without "to" to the profile\'s email, and one with "to" to "to"', async () => {
      const [user] = await usersWithEmail(1);
      const fromProfile = await post({ user_id: user, type: 'EMAIL', title: 'Hi', body: 'b', html: '<p>b</p>', critical: true });
      expect(fromProfile.status).toBe(201);
      const created = (await fromProfile.json()) as { id: string; to: string; html: string; critical: boolean };
      expect(created).toMatchObject({ to: `${user}@example.com`, html: '<p>b</p>', critical: true });
      const [row] = await db.sql<NotificationRow[]>`select * from notifications where id = ${created.id}`;
      expect(row).toMatchObject({ recipient: `${user}@example.com`, html: '<p>b</p>', critical: true, fanout_id: null });

      const explicit = await post({ user_id: user, type: 'EMAIL', body: 'b', to: 'elsewhere@example.com' });
      expect(explicit.status).toBe(201);
      expect(((await explicit.json()) as { to: string }).to).toBe('elsewhere@example.com');
    });

    it('sends an SMS to the profile\'s phone and a WEBHOOK to its webhook_url', async () => {
      const user = `addr-${randomUUID()}`;
      await putProfile(user, { phone: '+14155550142', webhook_url: 'https://hooks.example.com/in' });
      const sms = await post({ user_id: user, type: 'SMS', body: 'code 1234' });
      expect(sms.status).toBe(201);
      expect(((await sms.json()) as { to: string }).to).toBe('+14155550142');
      const hook = await post({ user_id: user, type: 'WEBHOOK', body: 'b' });
      expect(hook.status).toBe(201);
      expect(((await hook.json()) as { to: string }).to).toBe('https://hooks.example.com/in');
    });

    it('accepts a PUSH for a user with a push subscription, without an address of its own', async () => {
      const user = `push-${randomUUID()}`;
      await putProfile(user, { push_subscriptions: [push().subscribe()] });
      const res = await post({ user_id: user, type: 'PUSH', title: 'T', body: 'b' });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ user_id: user, type: 'PUSH', to: null, status: 'PENDING' });
    });

    it('refuses an EMAIL without "to" for a user with no email with 400 no_address, naming the user and the fixes', async () => {
      const user = `no-email-${randomUUID()}`;
      await putProfile(user, { phone: '+14155550143' });
      const refused = await expectRefused(() => post({ user_id: user, type: 'EMAIL', body: 'b' }), 400, 'no_address');
      expect(refused.error.message).toContain(user);
      expect(refused.error.message).toContain('PUT /users/:id');
      expect(refused.error.message).toContain('"to"');
      expect(refused.error.details).toEqual({ user_ids: [user], missing: 1 });
    });

    it('refuses a PUSH for a user without push subscriptions with 400 no_address', async () => {
      const user = `no-push-${randomUUID()}`;
      await putProfile(user, { email: 'x@example.com' });
      const refused = await expectRefused(() => post({ user_id: user, type: 'PUSH', body: 'b' }), 400, 'no_address');
      expect(refused.error.message).toContain('push subscription');
    });

    // A profile must not hold an email the EMAIL channel would refuse: such a user could be stored
    // but never sent to. The profile takes at most 254 characters, the longest address SMTP carries.
    it('refuses a profile email over 254 characters with 400 naming email, and sends an EMAIL to one of 254', async () => {
      const tooLong = `${'a'.repeat(64)}@${Array.from({ length: 4 }, () => 'b'.repeat(50)).join('.')}.example`;
      expect(tooLong.length).toBe(276);
      const refusedUser = `long-email-${randomUUID()}`;
      const refused = await expectRefused(() => putProfile(refusedUser, { email: tooLong }), 400, 'invalid_request');
      expect(refused.error.details).toEqual([expect.objectContaining({ path: 'email' })]);
      await expectRefused(() => post({ user_id: refusedUser, type: 'EMAIL', body: 'b' }), 400, 'no_address');

      const longest = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(53)}.example`;
      expect(longest.length).toBe(254);
      const user = `longest-email-${randomUUID()}`;
      expect((await putProfile(user, { email: longest })).status).toBe(200);
      const res = await post({ user_id: user, type: 'EMAIL', body: 'b' });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ user_id: user, type: 'EMAIL', to: longest, status: 'PENDING' });
    });

    it('stops using an address once a new profile leaves it out', async () => {
      const [user] = await usersWithEmail(1);
      expect((await post({ user_id: user, type: 'EMAIL', body: 'b' })).status).toBe(201);
      await putProfile(user!, { locale: 'en' });
      await expectRefused(() => post({ user_id: user, type: 'EMAIL', body: 'b' }), 400, 'no_address');
    });
  });

  describe('to a list of user_ids', () => {
    it('creates one notification per distinct user from their profiles in one transaction, answers 201 DONE, and queues them with one LPUSH', async () => {
      const users = await usersWithEmail(3);
      const lpush = vi.spyOn(api.redis, 'lpush');
      let res: Response;
      try {
        res = await post({
          user_ids: [users[0], users[1], users[2], users[0]],
          type: 'EMAIL',
          title: 'Sale',
          body: 'b',
          html: '<b>b</b>',
          data: { sale: 1 },
          critical: true,
        });
        expect(lpush).toHaveBeenCalledTimes(1);
      } finally {
        lpush.mockRestore();
      }
      expect(res.status).toBe(201);
      const body = (await res.json()) as FanoutBody;
      expect(res.headers.get('location')).toBe(`/fanouts/${body.fanout_id}`);
      expect(body).toMatchObject({ topic: null, type: 'EMAIL', status: 'DONE', created_count: 3, counts: { PENDING: 3 } });
      expect(body.finished_at).not.toBeNull();
      expect(body.notifications!.map((n) => n.user_id).sort()).toEqual([...users].sort());
      expect(body.notifications!.every((n) => n.status === 'PENDING')).toBe(true);

      const rows = await notificationsOfFanout(body.fanout_id);
      expect(rows.map((r) => r.id).sort()).toEqual(body.notifications!.map((n) => n.id).sort());
      for (const row of rows) {
        expect(row).toMatchObject({
          type: 'EMAIL',
          title: 'Sale',
          html: '<b>b</b>',
          data: { sale: 1 },
          critical: true,
          status: 'PENDING',
          recipient: `${row.user_id}@example.com`,
        });
        expect(row.queued_at).not.toBeNull();
      }
      const queued = await api.redis.lrange(api.keys.queue, 0, 2);
      expect(queued.sort()).toEqual(rows.map((r) => r.id).sort());

      const [fanout] = await db.sql`select status, topic, created_count, finished_at from fanouts where id = ${body.fanout_id}`;
      expect(fanout).toMatchObject({ status: 'DONE', topic: null, created_count: 3 });
      expect(fanout!.finished_at).not.toBeNull();
    });

    it('sends SMS to each user\'s phone', async () => {
      const users = await usersWithEmail(2, 'sms');
      const res = await post({ user_ids: users, type: 'SMS', body: 'b' });
      expect(res.status).toBe(201);
      const rows = await notificationsOfFanout(((await res.json()) as FanoutBody).fanout_id);
      const phones = await db.sql<{ user_id: string; phone: string }[]>`
        select user_id, phone from recipients where user_id = any(${users}::text[]) order by user_id`;
      expect(rows.map((r) => [r.user_id, r.recipient])).toEqual(phones.map((p) => [p.user_id, p.phone]));
    });

    it('refuses the whole list with 400 no_address when a user has no address, listing who, and stores nothing', async () => {
      const users = await usersWithEmail(2);
      const missing = `no-email-${randomUUID()}`;
      const refused = await expectRefused(() => post({ user_ids: [users[0], missing, users[1]], type: 'EMAIL', body: 'b' }), 400, 'no_address');
      expect(refused.error.details).toEqual({ user_ids: [missing], missing: 1 });
      expect(refused.error.message).toContain(missing);
      expect(refused.error.message).not.toContain(users[0]);
    });

    it('names at most 20 users without an address and says how many more', async () => {
      const missing = Array.from({ length: 25 }, (_, i) => `ghost-${String(i).padStart(2, '0')}`);
      const refused = await expectRefused(() => post({ user_ids: missing, type: 'SMS', body: 'b' }), 400, 'no_address');
      const details = refused.error.details as { user_ids: string[]; missing: number };
      expect(details.missing).toBe(25);
      expect(details.user_ids).toEqual(missing.slice(0, 20));
      expect(refused.error.message).toContain('and 5 more');
    });

    it('sends PUSH to users with a subscription and refuses the list when one has none', async () => {
      const subscribed = [`push-a-${randomUUID()}`, `push-b-${randomUUID()}`];
      for (const user of subscribed) await putProfile(user, { push_subscriptions: [push().subscribe()] });
      const res = await post({ user_ids: subscribed, type: 'PUSH', body: 'b' });
      expect(res.status).toBe(201);
      expect(((await res.json()) as FanoutBody).counts).toEqual({ PENDING: 2 });

      const bareUser = `push-none-${randomUUID()}`;
      const refused = await expectRefused(() => post({ user_ids: [...subscribed, bareUser], type: 'PUSH', body: 'b' }), 400, 'no_address');
      expect(refused.error.details).toEqual({ user_ids: [bareUser], missing: 1 });
    });

    it('creates 1,000 IN_APP notifications for the largest list, needing no profiles, with one LPUSH of every id', async () => {
      const users = Array.from({ length: 1000 }, (_, i) => `bulk-${i}`);
      const lengthBefore = await queueLength();
      const lpush = vi.spyOn(api.redis, 'lpush');
      let res: Response;
      try {
        res = await post({ user_ids: users, type: 'IN_APP', body: 'b' });
        expect(lpush).toHaveBeenCalledTimes(1);
        expect(lpush.mock.calls[0]!.slice(1)).toHaveLength(1000);
      } finally {
        lpush.mockRestore();
      }
      expect(res.status).toBe(201);
      const body = (await res.json()) as FanoutBody;
      expect(body.counts).toEqual({ PENDING: 1000 });
      expect(body.notifications).toHaveLength(1000);
      expect(await queueLength()).toBe(lengthBefore + 1000);
      const [row] = await db.sql<{ n: number; users: number }[]>`
        select count(*)::int as n, count(distinct user_id)::int as users from notifications where fanout_id = ${body.fanout_id}`;
      expect(row).toEqual({ n: 1000, users: 1000 });
    });

    describe('with an Idempotency-Key', () => {
      /** An EMAIL fan-out to `count` new users, created (201) under a new Idempotency-Key. */
      async function fanoutWithKey(count: number) {
        const users = await usersWithEmail(count);
        const key = randomUUID();
        const request = { user_ids: users, type: 'EMAIL', body: 'b' };
        const first = await post(request, { 'idempotency-key': key });
        expect(first.status).toBe(201);
        return { users, key, request, original: (await first.json()) as FanoutBody };
      }

      it('answers a repeat 200 with the same fan-out and notifications, creating and queuing nothing', async () => {
        const { request, key, original } = await fanoutWithKey(3);

        const before = await countRows(db.sql, STORED_TABLES);
        const queued = await queueLength();
        const repeat = await post(request, { 'idempotency-key': key });
        expect(repeat.status).toBe(200);
        const again = (await repeat.json()) as FanoutBody;
        expect(repeat.headers.get('location')).toBe(`/fanouts/${original.fanout_id}`);
        expect(again.fanout_id).toBe(original.fanout_id);
        const byUser = (m: Member[]) => [...m].sort((a, b) => a.user_id.localeCompare(b.user_id));
        expect(byUser(again.notifications!)).toEqual(byUser(original.notifications!));
        expect(again.counts).toEqual({ PENDING: 3 });
        expect(await countRows(db.sql, STORED_TABLES)).toEqual(before);
        expect(await queueLength()).toBe(queued);
      });

      it('refuses the same key with another list with 422 and creates nothing', async () => {
        const users = await usersWithEmail(2);
        const key = randomUUID();
        expect((await post({ user_ids: users, type: 'EMAIL', body: 'b' }, { 'idempotency-key': key })).status).toBe(201);
        await expectRefused(() => post({ user_ids: [users[0]], type: 'EMAIL', body: 'b' }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
        await expectRefused(() => post({ user_id: users[0], type: 'EMAIL', body: 'b' }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
      });

      it('refuses a key first used for one notification when it comes back with user_ids, with 422', async () => {
        const [user] = await usersWithEmail(1);
        const key = randomUUID();
        expect((await post({ user_id: user, type: 'EMAIL', body: 'b' }, { 'idempotency-key': key })).status).toBe(201);
        await expectRefused(() => post({ user_ids: [user], type: 'EMAIL', body: 'b' }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
      });

      it('creates one fan-out for 10 concurrent requests with one key, and every answer names it', async () => {
        const users = await usersWithEmail(4);
        const key = randomUUID();
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => post({ user_ids: users, type: 'EMAIL', body: 'race' }, { 'idempotency-key': key })),
        );
        const statuses = answers.map((a) => a.status).sort();
        expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
        const bodies = (await Promise.all(answers.map((a) => a.json()))) as FanoutBody[];
        expect(new Set(bodies.map((b) => b.fanout_id)).size).toBe(1);
        const [row] = await db.sql<{ fanouts: number; notifications: number }[]>`
          select count(distinct fanout_id)::int as fanouts, count(*)::int as notifications
          from notifications where user_id = any(${users}::text[]) and body = 'race'`;
        expect(row).toEqual({ fanouts: 1, notifications: 4 });
      });

      // A client retrying a request that was stored must not be refused because a listed user's
      // address has gone since: it would take the refusal to mean that nothing was sent.
      it('answers a repeat 200 with the original fan-out even after a listed user cleared their address', async () => {
        const { users, request, key, original } = await fanoutWithKey(2);
        await putProfile(users[0]!, { locale: 'en' });
        const repeat = await post(request, { 'idempotency-key': key });
        expect(repeat.status).toBe(200);
        expect(((await repeat.json()) as FanoutBody).fanout_id).toBe(original.fanout_id);
      });
    });
  });

  describe('to a topic', () => {
    async function subscribe(topic: string, userIds: string[]): Promise<void> {
      expect((await sendJson(api.app, 'PUT', `/topics/${topic}/subscribers`, { user_ids: userIds })).status).toBe(200);
    }

    it('answers 202 RUNNING with Location at once, creating nothing, and workers then create the notifications', async () => {
      const topic = `launch-${randomUUID()}`;
      const users = ['t-a', 't-b', 't-c'];
      await subscribe(topic, users);
      const queued = await queueLength();
      const notificationsBefore = (await countRows(db.sql, ['notifications'])).notifications;

      const res = await post({ topic, type: 'IN_APP', title: 'New', body: 'b', data: { v: 2 }, critical: true });
      expect(res.status).toBe(202);
      const accepted = (await res.json()) as FanoutBody;
      expect(res.headers.get('location')).toBe(`/fanouts/${accepted.fanout_id}`);
      expect(accepted).toMatchObject({ topic, type: 'IN_APP', status: 'RUNNING', created_count: 0, counts: {}, finished_at: null });
      expect(accepted.notifications).toBeUndefined();
      expect((await countRows(db.sql, ['notifications'])).notifications).toBe(notificationsBefore);
      expect(await queueLength()).toBe(queued);

      const running = await api.app.request(`/fanouts/${accepted.fanout_id}`);
      expect(running.status).toBe(200);
      expect(await running.json()).toMatchObject({ fanout_id: accepted.fanout_id, status: 'RUNNING', created_count: 0 });

      await runner().runOnce();

      const done = (await (await api.app.request(`/fanouts/${accepted.fanout_id}`)).json()) as FanoutBody;
      expect(done).toMatchObject({ status: 'DONE', created_count: 3, counts: { PENDING: 3 } });
      expect(done.finished_at).not.toBeNull();
      const rows = await notificationsOfFanout(accepted.fanout_id);
      expect(rows.map((r) => r.user_id)).toEqual(users);
      for (const row of rows) expect(row).toMatchObject({ title: 'New', body: 'b', data: { v: 2 }, critical: true, status: 'PENDING' });
      const entries = await api.redis.lrange(api.keys.queue, 0, -1);
      for (const row of rows) expect(entries.filter((e) => e === row.id)).toHaveLength(1);
    });

    it('accepts an EMAIL to a topic whose subscribers lack an email, and skips those users when it runs', async () => {
      const topic = `digest-${randomUUID()}`;
      const [withEmail] = await usersWithEmail(1, 'digest');
      const without = `digest-none-${randomUUID()}`;
      await subscribe(topic, [withEmail!, without]);
      const res = await post({ topic, type: 'EMAIL', body: 'b' });
      expect(res.status).toBe(202);
      const { fanout_id } = (await res.json()) as FanoutBody;
      await runner().runOnce();
      const done = (await (await api.app.request(`/fanouts/${fanout_id}`)).json()) as FanoutBody;
      expect(done).toMatchObject({ status: 'DONE', created_count: 2, counts: { PENDING: 1, SKIPPED: 1 } });
    });

    it('finishes a fan-out to a topic nobody follows with no notifications', async () => {
      const res = await post({ topic: `empty-${randomUUID()}`, type: 'IN_APP', body: 'b' });
      expect(res.status).toBe(202);
      const { fanout_id } = (await res.json()) as FanoutBody;
      await runner().runOnce();
      expect(await (await api.app.request(`/fanouts/${fanout_id}`)).json()).toMatchObject({ status: 'DONE', created_count: 0, counts: {} });
    });

    it('answers a repeat with the same Idempotency-Key with the first fan-out, creating no second one', async () => {
      const topic = `idem-topic-${randomUUID()}`;
      await subscribe(topic, ['x']);
      const key = randomUUID();
      const first = (await (await post({ topic, type: 'IN_APP', body: 'b' }, { 'idempotency-key': key })).json()) as FanoutBody;
      const before = await countRows(db.sql, STORED_TABLES);
      const repeat = await post({ topic, type: 'IN_APP', body: 'b' }, { 'idempotency-key': key });
      // A topic's fan-out is answered 202 whether this request or an earlier one created it.
      expect(repeat.status).toBe(202);
      expect(((await repeat.json()) as FanoutBody).fanout_id).toBe(first.fanout_id);
      expect(repeat.headers.get('location')).toBe(`/fanouts/${first.fanout_id}`);
      expect(await countRows(db.sql, STORED_TABLES)).toEqual(before);
      await expectRefused(() => post({ topic, type: 'IN_APP', body: 'other' }, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
      await runner().runOnce();
    });
  });

  describe('GET /fanouts/:id', () => {
    it('shows a fan-out to a list of users with its notifications by status', async () => {
      const users = await usersWithEmail(2);
      const created = (await (await post({ user_ids: users, type: 'EMAIL', body: 'b' })).json()) as FanoutBody;
      const [one] = await notificationsOfFanout(created.fanout_id);
      await db.sql`update notifications set status = 'SENT', sent_at = now() where id = ${one!.id}`;
      const res = await api.app.request(`/fanouts/${created.fanout_id}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        fanout_id: created.fanout_id,
        topic: null,
        type: 'EMAIL',
        status: 'DONE',
        created_count: 2,
        counts: { PENDING: 1, SENT: 1 },
        created_at: created.created_at,
        finished_at: created.finished_at,
      });
    });

    it('answers 404 for an unknown fan-out and 400 invalid_id for an id that is not a UUID', async () => {
      const unknown = await api.app.request(`/fanouts/${randomUUID()}`);
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as ErrorResponse).error.code).toBe('not_found');
      const malformed = await api.app.request('/fanouts/not-a-uuid');
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as ErrorResponse).error.code).toBe('invalid_id');
    });
  });

  describe('topic subscribers', () => {
    const change = (method: 'PUT' | 'DELETE', topic: string, body: unknown) => sendJson(api.app, method, `/topics/${topic}/subscribers`, body);

    async function subscribers(topic: string): Promise<string[]> {
      const rows = await db.sql<{ user_id: string }[]>`select user_id from topic_subscriptions where topic = ${topic} order by user_id`;
      return rows.map((r) => r.user_id);
    }

    it('adds subscribers idempotently, keeping the first subscription time, and GET counts them', async () => {
      const topic = `order-42.followers:${randomUUID()}`;
      const first = await change('PUT', topic, { user_ids: ['amy', 'bob', 'amy'] });
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ topic, subscribers: 2, changed: 2 });
      const [amyBefore] = await db.sql<{ subscribed_at: Date }[]>`
        select subscribed_at from topic_subscriptions where topic = ${topic} and user_id = 'amy'`;

      const again = await change('PUT', topic, { user_ids: ['amy', 'cid'] });
      expect(await again.json()).toEqual({ topic, subscribers: 3, changed: 1 });
      const [amyAfter] = await db.sql<{ subscribed_at: Date }[]>`
        select subscribed_at from topic_subscriptions where topic = ${topic} and user_id = 'amy'`;
      expect(amyAfter!.subscribed_at).toEqual(amyBefore!.subscribed_at);
      expect(await subscribers(topic)).toEqual(['amy', 'bob', 'cid']);

      const got = await api.app.request(`/topics/${topic}`);
      expect(got.status).toBe(200);
      expect(await got.json()).toEqual({ topic, subscribers: 3 });
    });

    it('removes the listed subscribers with DELETE, ignoring users who were not subscribed', async () => {
      const topic = `remove-${randomUUID()}`;
      await change('PUT', topic, { user_ids: ['a', 'b', 'c'] });
      const res = await change('DELETE', topic, { user_ids: ['b', 'zed'] });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ topic, subscribers: 2, changed: 1 });
      expect(await subscribers(topic)).toEqual(['a', 'c']);
      expect(await (await change('DELETE', topic, { user_ids: ['b'] })).json()).toEqual({ topic, subscribers: 2, changed: 0 });
    });

    it('keeps topics apart', async () => {
      const [one, two] = [`one-${randomUUID()}`, `two-${randomUUID()}`];
      await change('PUT', one, { user_ids: ['shared'] });
      await change('PUT', two, { user_ids: ['shared'] });
      await change('DELETE', one, { user_ids: ['shared'] });
      expect(await subscribers(one)).toEqual([]);
      expect(await subscribers(two)).toEqual(['shared']);
    });

    it('answers a topic nobody follows with 0 subscribers', async () => {
      const topic = `unknown-${randomUUID()}`;
      expect(await (await api.app.request(`/topics/${topic}`)).json()).toEqual({ topic, subscribers: 0 });
    });

    it.each<[string, 'PUT' | 'DELETE', string, unknown, number, string]>([
      ['a topic key with a space', 'PUT', 'bad%20key', { user_ids: ['a'] }, 400, 'invalid_request'],
      ['a topic key over 200 characters', 'PUT', 't'.repeat(201), { user_ids: ['a'] }, 400, 'invalid_request'],
      ['an empty user_ids', 'PUT', 'fine-topic', { user_ids: [] }, 400, 'invalid_request'],
      ['1,001 user_ids', 'PUT', 'fine-topic', { user_ids: Array.from({ length: 1001 }, (_, i) => `u${i}`) }, 400, 'invalid_request'],
      ['a user id that is not a string', 'PUT', 'fine-topic', { user_ids: [42] }, 400, 'invalid_request'],
      ['malformed JSON', 'PUT', 'fine-topic', '{"user_ids":', 400, 'malformed_json'],
      ['an empty user_ids on DELETE', 'DELETE', 'fine-topic', { user_ids: [] }, 400, 'invalid_request'],
    ])('refuses %s and changes no subscription', async (_, method, topic, body, status, code) => {
      await change('PUT', 'fine-topic', { user_ids: ['keep'] });
      await expectRefused(() => change(method, topic, body), status, code);
      expect(await subscribers('fine-topic')).toEqual(['keep']);
    });

    it('refuses a body that is not JSON with 415 and changes nothing', async () => {
      await expectRefused(
        () => api.app.request('/topics/fine-topic/subscribers', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'a,b' }),
        415,
        'unsupported_media_type',
      );
    });
  });
});
