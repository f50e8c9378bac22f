import { describe, expect, it } from 'vitest';
import { PushService, type SubscriptionJson } from '../support/pushService.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { fixtureValue } from '../support/fixtureValue.ts';
import { countRows, expectRefusal, sendJson, useTestApi, type ErrorResponse } from './helpers.ts';

const RECIPIENT_TABLES = ['recipients', 'push_subscriptions', 'channel_opt_outs'];

interface Profile {
  user_id: string;
  email: string | null;
  phone: string | null;
  webhook_url: string | null;
  locale: string | null;
  push_subscriptions: SubscriptionJson[];
  opted_out: string[];
  created_at: string | null;
  updated_at: string | null;
}

describe('recipient profiles and preferences', () => {
  const db = useTestDatabase();
  const api = useTestApi(db);
  const push = fixtureValue('the push service', 'file', () => PushService.start(), (service) => service.close());

  const path = (userId: string) => `/users/${encodeURIComponent(userId)}`;
  const putProfile = (userId: string, body: unknown) => sendJson(api.app, 'PUT', path(userId), body);
  const putPreferences = (userId: string, body: unknown) => sendJson(api.app, 'PUT', `${path(userId)}/preferences`, body);

  async function getProfile(userId: string): Promise<Response> {
    return api.app.request(path(userId));
  }

  async function storedProfile(userId: string): Promise<Profile> {
    const res = await getProfile(userId);
    expect(res.status).toBe(200);
    return (await res.json()) as Profile;
  }

  /** Sends `request`, expects `status` and `code`, and checks no recipient table and no stored profile changed. */
  const expectRefused = (request: () => Response | Promise<Response>, status: number, code: string, unchangedUser?: string) =>
    expectRefusal(request, { status, code }, async () => [
      await countRows(db.sql, RECIPIENT_TABLES),
      unchangedUser === undefined ? undefined : await storedProfile(unchangedUser),
    ]);

  describe('PUT /users/:id', () => {
    it('stores the whole profile and answers it as GET /users/:id then shows it', async () => {
      const subscription = push().subscribe();
      const res = await putProfile('ada', {
        email: 'ada@example.com',
        phone: '+14155550100',
        webhook_url: 'https://hooks.example.com/ada',
        locale: 'pt-BR',
        push_subscriptions: [subscription],
      });
      expect(res.status).toBe(200);
      const answered = (await res.json()) as Profile;
      expect(answered).toMatchObject({
        user_id: 'ada',
        email: 'ada@example.com',
        phone: '+14155550100',
        webhook_url: 'https://hooks.example.com/ada',
        locale: 'pt-BR',
        push_subscriptions: [subscription],
        opted_out: [],
      });
      expect(answered.created_at).not.toBeNull();
      expect(await storedProfile('ada')).toEqual(answered);

      const [row] = await db.sql`select email, phone, webhook_url, locale from recipients where user_id = 'ada'`;
      expect(row).toEqual({ email: 'ada@example.com', phone: '+14155550100', webhook_url: 'https://hooks.example.com/ada', locale: 'pt-BR' });
      const subscriptions = await db.sql`select endpoint, p256dh, auth from push_subscriptions where user_id = 'ada'`;
      expect(subscriptions).toEqual([{ endpoint: subscription.endpoint, p256dh: subscription.keys.p256dh, auth: subscription.keys.auth }]);
    });

    it('replaces the previous profile: fields left out are cleared, and push subscriptions are replaced as a set', async () => {
      const kept = push().subscribe();
      const dropped = push().subscribe();
      await putProfile('grace', {
        email: 'grace@example.com',
        phone: '+442071838750',
        webhook_url: 'https://hooks.example.com/grace',
        locale: 'en',
        push_subscriptions: [kept, dropped],
      });
      const first = await storedProfile('grace');
      const [keptBefore] = await db.sql<{ created_at: Date }[]>`
        select created_at from push_subscriptions where user_id = 'grace' and endpoint = ${kept.endpoint}`;

      const renewedKeys = push().subscribe().keys;
      const added = push().subscribe();
      const res = await putProfile('grace', {
        phone: '+442071838751',
        push_subscriptions: [{ endpoint: kept.endpoint, keys: renewedKeys }, added],
      });
      expect(res.status).toBe(200);
      const second = (await res.json()) as Profile;
      expect(second).toMatchObject({ email: null, phone: '+442071838751', webhook_url: null, locale: null });
      expect(second.push_subscriptions.map((s) => s.endpoint).sort()).toEqual([kept.endpoint, added.endpoint].sort());
      expect(second.push_subscriptions.find((s) => s.endpoint === kept.endpoint)!.keys).toEqual(renewedKeys);
      expect(second.created_at).toBe(first.created_at);
      expect(new Date(second.updated_at!).getTime()).toBeGreaterThanOrEqual(new Date(first.updated_at!).getTime());

      const stored = await db.sql<{ endpoint: string; created_at: Date }[]>`
        select endpoint, created_at from push_subscriptions where user_id = 'grace' order by endpoint`;
      expect(stored.map((s) => s.endpoint)).toEqual([kept.endpoint, added.endpoint].sort());
      // The subscription kept from before keeps its creation time.
      expect(stored.find((s) => s.endpoint === kept.endpoint)!.created_at).toEqual(keptBefore!.created_at);
      expect(await storedProfile('grace')).toEqual(second);
    });

    it('clears every push subscription when push_subscriptions is left out', async () => {
      await putProfile('linus', { email: 'linus@example.com', push_subscriptions: [push().subscribe(), push().subscribe()] });
      expect((await storedProfile('linus')).push_subscriptions).toHaveLength(2);
      expect((await putProfile('linus', { email: 'linus@example.com' })).status).toBe(200);
      expect((await storedProfile('linus')).push_subscriptions).toEqual([]);
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from push_subscriptions where user_id = 'linus'`;
      expect(row!.n).toBe(0);
    });

    it('touches no other user\'s profile or subscriptions', async () => {
      const theirs = push().subscribe();
      await putProfile('other-a', { email: 'a@example.com', push_subscriptions: [theirs] });
      const before = await storedProfile('other-a');
      await putProfile('other-b', { email: 'b@example.com', push_subscriptions: [] });
      expect(await storedProfile('other-a')).toEqual(before);
    });

    it('takes a user id with characters that need encoding in a path', async () => {
      const userId = 'ada lovelace@example.com';
      expect((await putProfile(userId, { locale: 'en-GB' })).status).toBe(200);
      expect(await storedProfile(userId)).toMatchObject({ user_id: userId, locale: 'en-GB' });
      const [row] = await db.sql`select user_id from recipients where user_id = ${userId}`;
      expect(row).toEqual({ user_id: userId });
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['an email that is not an address', { email: 'not an email' }, 'email'],
      ['a phone number not in E.164 form', { phone: '415 555 0100' }, 'phone'],
      ['a phone number starting +0', { phone: '+0415555010' }, 'phone'],
      ['a webhook_url that is not http(s)', { webhook_url: 'ftp://example.com/x' }, 'webhook_url'],
      ['a locale that is not a language tag', { locale: 'english please' }, 'locale'],
      ['a push subscription with a short p256dh key', { push_subscriptions: [{ endpoint: 'https://push.example/x', keys: { p256dh: 'abc', auth: 'A'.repeat(22) } }] }, 'push_subscriptions.0.keys.p256dh'],
      ['a push subscription whose auth is not URL-safe base64', { push_subscriptions: [{ endpoint: 'https://push.example/x', keys: { p256dh: 'B'.repeat(87), auth: '+/+/+/+/+/+/+/+/+/+/+/' } }] }, 'push_subscriptions.0.keys.auth'],
      ['a push subscription with a non-http endpoint', { push_subscriptions: [{ endpoint: 'ftp://push.example/x', keys: { p256dh: 'B'.repeat(87), auth: 'A'.repeat(22) } }] }, 'push_subscriptions.0.endpoint'],
      ['a push subscription without keys', { push_subscriptions: [{ endpoint: 'https://push.example/x' }] }, 'push_subscriptions.0.keys'],
      ['push_subscriptions that is not a list', { push_subscriptions: { endpoint: 'https://push.example/x' } }, 'push_subscriptions'],
    ])('refuses %s with 400 and leaves the stored profile as it was', async (_, body, field) => {
      await putProfile('kept', { email: 'kept@example.com', phone: '+14155550199', push_subscriptions: [push().subscribe()] });
      const refused = await expectRefused(() => putProfile('kept', body), 400, 'invalid_request', 'kept');
      expect(refused.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field })]));
    });

    it('refuses more than 50 push subscriptions with 400', async () => {
      const many = Array.from({ length: 51 }, () => push().subscribe());
      await expectRefused(() => putProfile('many-subs', { push_subscriptions: many }), 400, 'invalid_request');
      expect((await getProfile('many-subs')).status).toBe(404);
    });

    it.each(['http://10.0.0.5/hook', 'http://[::a00:5]/hook', 'http://[64:ff9b::7f00:1]/hook'])('refuses a webhook_url on a private network (%s) with 400 webhook_target_not_allowed, naming webhook_url', async (webhookUrl) => {
      await putProfile('private-hook', { email: 'p@example.com' });
      const refused = await expectRefused(
        () => putProfile('private-hook', { webhook_url: webhookUrl }),
        400,
        'webhook_target_not_allowed',
        'private-hook',
      );
      expect(refused.error.details).toEqual([expect.objectContaining({ path: 'webhook_url' })]);
      expect(refused.error.message).toContain('WEBHOOK_ALLOW_PRIVATE');
    });

    it('refuses malformed JSON with 400, a body that is not JSON with 415, and a user id over 255 characters with 400', async () => {
      await expectRefused(() => putProfile('bad-body', '{"email":'), 400, 'malformed_json');
      await expectRefused(
        () => api.app.request(path('bad-body'), { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'email=a@b.example' }),
        415,
        'unsupported_media_type',
      );
      await expectRefused(() => putProfile('u'.repeat(256), { email: 'long@example.com' }), 400, 'invalid_request');
      await expectRefused(() => api.app.request('/users/nul%00user', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }), 400, 'invalid_request');
    });

    // Two entries with the same endpoint would make the subscriptions' upsert touch one row twice.
    // A browser that re-subscribed lists its endpoint again with new keys: one subscription is
    // stored per endpoint, the one listed last.
    it('stores a subscription listed twice once, with the keys listed last, and answers 200', async () => {
      const subscription = push().subscribe();
      const resubscribed = { endpoint: subscription.endpoint, keys: push().subscribe().keys };
      const res = await putProfile('twice', { push_subscriptions: [subscription, resubscribed] });
      expect(res.status).toBe(200);
      expect(((await res.json()) as Profile).push_subscriptions).toEqual([resubscribed]);
      expect((await storedProfile('twice')).push_subscriptions).toEqual([resubscribed]);
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from push_subscriptions where user_id = 'twice'`;
      expect(row!.n).toBe(1);
    });
  });

  describe('GET /users/:id', () => {
    it('answers 404 not_found for a user nothing is stored for, pointing at PUT /users/:id', async () => {
      const res = await getProfile('nobody');
      expect(res.status).toBe(404);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('not_found');
      expect(body.error.message).toContain('PUT /users/nobody');
    });

    it('includes the channels the user opted out of', async () => {
      await putProfile('opted', { email: 'opted@example.com' });
      await putPreferences('opted', { opted_out: ['SMS', 'EMAIL'] });
      expect(await storedProfile('opted')).toMatchObject({ email: 'opted@example.com', opted_out: ['EMAIL', 'SMS'] });
    });

    it('answers a user with preferences but no profile, with empty addresses', async () => {
      await putPreferences('prefs-only', { opted_out: ['PUSH'] });
      expect(await storedProfile('prefs-only')).toEqual({
        user_id: 'prefs-only',
        email: null,
        phone: null,
        webhook_url: null,
        locale: null,
        push_subscriptions: [],
        opted_out: ['PUSH'],
        created_at: null,
        updated_at: null,
      });
    });
  });

  describe('PUT and GET /users/:id/preferences', () => {
    async function preferences(userId: string): Promise<unknown> {
      const res = await api.app.request(`${path(userId)}/preferences`);
      expect(res.status).toBe(200);
      return res.json();
    }

    it('replaces the set of channels opted out of, and GET shows it', async () => {
      const first = await putPreferences('prefs', { opted_out: ['EMAIL', 'SMS'] });
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ user_id: 'prefs', opted_out: ['EMAIL', 'SMS'] });

      const second = await putPreferences('prefs', { opted_out: ['PUSH', 'SMS'] });
      expect(await second.json()).toEqual({ user_id: 'prefs', opted_out: ['PUSH', 'SMS'] });
      expect(await preferences('prefs')).toEqual({ user_id: 'prefs', opted_out: ['PUSH', 'SMS'] });
      const rows = await db.sql`select channel from channel_opt_outs where user_id = 'prefs' order by channel`;
      expect(rows.map((r) => r.channel)).toEqual(['PUSH', 'SMS']);

      await putPreferences('prefs', { opted_out: [] });
      expect(await preferences('prefs')).toEqual({ user_id: 'prefs', opted_out: [] });
      const [left] = await db.sql<{ n: number }[]>`select count(*)::int as n from channel_opt_outs where user_id = 'prefs'`;
      expect(left!.n).toBe(0);
    });

    it('stores a channel listed twice once', async () => {
      const res = await putPreferences('dup-prefs', { opted_out: ['IN_APP', 'IN_APP', 'WEBHOOK'] });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ user_id: 'dup-prefs', opted_out: ['IN_APP', 'WEBHOOK'] });
    });

    it('answers an empty set for a user who never set preferences', async () => {
      expect(await preferences('never-set')).toEqual({ user_id: 'never-set', opted_out: [] });
    });

    it('leaves other users\' preferences alone', async () => {
      await putPreferences('neighbour', { opted_out: ['EMAIL'] });
      await putPreferences('me', { opted_out: ['SMS'] });
      await putPreferences('me', { opted_out: [] });
      expect(await preferences('neighbour')).toEqual({ user_id: 'neighbour', opted_out: ['EMAIL'] });
    });

    it.each<[string, unknown]>([
      ['an unknown channel', { opted_out: ['FAX'] }],
      ['a missing opted_out', {}],
      ['opted_out that is not a list', { opted_out: 'EMAIL' }],
      ['a lower-case channel', { opted_out: ['email'] }],
    ])('refuses %s with 400 and keeps the stored set', async (_, body) => {
      await putPreferences('strict', { opted_out: ['EMAIL'] });
      await expectRefused(() => putPreferences('strict', body), 400, 'invalid_request');
      expect(await preferences('strict')).toEqual({ user_id: 'strict', opted_out: ['EMAIL'] });
    });
  });
});
