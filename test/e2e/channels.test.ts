import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import type { QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { storedAttempts } from '../support/notifications.ts';
import type { PushService, SubscriptionJson } from '../support/pushService.ts';
import { header, type TestSmtpServer } from '../support/smtpServer.ts';
import { serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { TestScope } from '../support/testScope.ts';
import type { TwilioServer } from '../support/twilioServer.ts';
import { waitFor } from '../support/waitFor.ts';

const EMAIL_FROM = 'Herald <no-reply@herald.example>';
const SMS_FROM = '+15005550006';
const VAPID_SUBJECT = 'mailto:ops@herald.example';
/** Far above any stall of a loaded machine, so every attempt ends as its provider's answer says. */
const TIMINGS = { LEASE_MS: '30000', PROVIDER_TIMEOUT_MS: '5000', RETRY_BASE_MS: '50', RETRY_MAX_MS: '200' };

/** Statuses a notification does not leave on its own. */
const FINAL = ['SENT', 'FAILED', 'SKIPPED'];

interface NotificationJson {
  id: string;
  user_id: string;
  status: string;
  retry_count: number;
  error_reason: string | null;
}

interface ErrorJson {
  error: { code: string; message: string };
}

describe('EMAIL, SMS and PUSH through the real processes and providers', () => {
  const scope = new TestScope();
  const vapid = webpush.generateVAPIDKeys();
  let db: TestDatabase;
  let keys: QueueKeys;
  let redis: Redis;
  let api: string;
  let apiWithoutSms: string;
  let smtp: TestSmtpServer;
  let twilio: TwilioServer;
  let push: PushService;

  beforeAll(async () => {
    db = await scope.database();
    keys = testQueueKeys();
    redis = scope.redis();
    [smtp, twilio, push] = await Promise.all([scope.smtp(), scope.twilio(), scope.pushService()]);
    const base = serviceEnv(db, keys, { ...TIMINGS, SMTP_URL: smtp.url, EMAIL_FROM });
    const env = {
      ...base,
      SMS_PROVIDER_URL: twilio.url,
      SMS_ACCOUNT_SID: twilio.accountSid,
      SMS_AUTH_TOKEN: twilio.authToken,
      SMS_FROM,
      VAPID_PUBLIC_KEY: vapid.publicKey,
      VAPID_PRIVATE_KEY: vapid.privateKey,
      VAPID_SUBJECT,
    };
    const [full, partial] = await Promise.all([scope.api(env), scope.api(base), scope.worker(env)]);
    api = full.url;
    apiWithoutSms = partial.url;
  });

  afterAll(async () => {
    await scope.close();
  });

  async function request(method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** A new user id with this profile stored through `PUT /users/:id`. */
  async function user(profile: Record<string, unknown>): Promise<string> {
    const id = `user-${randomUUID()}`;
    const res = await request('PUT', `${api}/users/${id}`, profile);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    return id;
  }

  async function create(body: Record<string, unknown>, apiUrl = api): Promise<NotificationJson> {
    const res = await request('POST', `${apiUrl}/notifications`, body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    return res.json as NotificationJson;
  }

  /**
   * The notification as `GET /notifications/:id` shows it once it has `status`; fails at once when
   * it ends in another final status.
   */
  async function reached(id: string, status: string, timeoutMs = 20_000): Promise<NotificationJson> {
    let last: NotificationJson | undefined;
    const seen = await waitFor(
      `notification ${id} to be ${status}`,
      async () => {
        last = (await request('GET', `${api}/notifications/${id}`)).json as NotificationJson;
        return last.status === status || FINAL.includes(last.status) ? last : undefined;
      },
      timeoutMs,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; it is ${JSON.stringify(last)}`);
    });
    if (seen.status !== status) throw new Error(`notification ${id} ended ${seen.status}, not ${status}: ${JSON.stringify(seen)}`);
    return seen;
  }

  async function outcomes(id: string): Promise<string[]> {
    return (await storedAttempts(db.sql, id)).map((a) => a.outcome);
  }

  describe('EMAIL', () => {
    it('sends to the profile address with subject, text, html, a Message-ID of the notification id and X-Notification-Id, then SENT', async () => {
      const userId = await user({ email: 'ada@example.com' });
      const { id } = await create({
        user_id: userId,
        type: 'EMAIL',
        title: 'Your receipt',
        body: 'Thanks for your order.',
        html: '<p>Thanks for your <b>order</b>.</p>',
      });

      const sent = await reached(id, 'SENT');
      expect(sent).toMatchObject({ retry_count: 0, error_reason: null });
      const [mail, ...more] = smtp.forId(id);
      expect(more, 'messages after the first').toHaveLength(0);
      expect(mail!.rcptTo).toEqual(['ada@example.com']);
      expect(mail!.mailFrom).toBe('no-reply@herald.example');
      expect(mail!.parsed.from).toMatchObject({ address: 'no-reply@herald.example', name: 'Herald' });
      expect(mail!.parsed.subject).toBe('Your receipt');
      expect(mail!.parsed.text?.trim()).toBe('Thanks for your order.');
      expect(mail!.parsed.html?.trim()).toBe('<p>Thanks for your <b>order</b>.</p>');
      expect(mail!.parsed.messageId).toBe(`<${id}@herald.example>`);
      expect(header(mail!, 'X-Notification-Id')).toBe(id);
      expect(await outcomes(id)).toEqual(['SENT']);
    });

    it('a 550 from the SMTP server fails the notification at once, with the reply in error_reason and the id on the dead-letter list', async () => {
      const userId = await user({ email: 'nobody@example.com' });
      smtp.respondWith(550, '5.1.1 <nobody@example.com>: no such user', 'RCPT');
      const { id } = await create({ user_id: userId, type: 'EMAIL', title: 'Hello', body: 'Is anyone there?' });

      const failed = await reached(id, 'FAILED');
      // Permanent: one attempt, not the MAX_RETRIES (3) a passing failure gets.
      expect(failed.retry_count).toBe(1);
      expect(failed.error_reason).toContain('550');
      expect(failed.error_reason).toContain('5.1.1 <nobody@example.com>: no such user');
      expect(await outcomes(id)).toEqual(['FAILED']);
      expect(smtp.forId(id)).toHaveLength(0);
      await waitFor(`${id} on the dead-letter list ${keys.dlq}`, async () => (await redis.lrange(keys.dlq, 0, -1)).includes(id), 10_000);
    });

    it('a 450 from the SMTP server is retried, and the retry is delivered once', async () => {
      const userId = await user({ email: 'busy@example.com' });
      smtp.respondWith(450, '4.2.1 mailbox busy, try again later', 'RCPT');
      const { id } = await create({ user_id: userId, type: 'EMAIL', title: 'Later', body: 'Second time lucky' });

      const sent = await reached(id, 'SENT');
      expect(sent).toMatchObject({ retry_count: 1, error_reason: null });
      const attempts = await storedAttempts(db.sql, id);
      expect(attempts.map((a) => a.outcome)).toEqual(['RETRY', 'SENT']);
      expect(attempts[0]!.error).toContain('450 4.2.1 mailbox busy');
      expect(smtp.forId(id)).toHaveLength(1);
      expect(smtp.forId(id)[0]!.rcptTo).toEqual(['busy@example.com']);
      expect(await redis.lrange(keys.dlq, 0, -1)).not.toContain(id);
    });
  });

  describe('SMS', () => {
    function requestsFor(marker: string) {
      return twilio.requests.filter((r) => r.form.Body?.includes(marker));
    }

    it('posts To, From and Body to the Messages API with the account credentials, then SENT', async () => {
      const userId = await user({ phone: '+14155550100' });
      const marker = randomUUID();
      const { id } = await create({ user_id: userId, type: 'SMS', title: 'Code', body: `Your code is 1234 (${marker})` });

      expect(await reached(id, 'SENT')).toMatchObject({ retry_count: 0, error_reason: null });
      const sent = requestsFor(marker);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`);
      expect(sent[0]!.form).toEqual({ To: '+14155550100', From: SMS_FROM, Body: `Code\nYour code is 1234 (${marker})` });
      expect(twilio.messages.filter((m) => m.body.includes(marker)).map((m) => [m.to, m.from])).toEqual([['+14155550100', SMS_FROM]]);
    });

    it('after a 429 with Retry-After: 2, the next attempt waits at least 2 s although the backoff is 50-200 ms, then SENT', async () => {
      const userId = await user({ phone: '+14155550101' });
      const marker = randomUUID();
      twilio.failNext({ status: 429, retryAfter: '2' });
      const { id } = await create({ user_id: userId, type: 'SMS', body: `Slow down (${marker})` });

      expect(await reached(id, 'SENT')).toMatchObject({ retry_count: 1, error_reason: null });
      const tried = requestsFor(marker);
      expect(tried).toHaveLength(2);
      const gapMs = tried[1]!.at - tried[0]!.at;
      expect(gapMs, 'ms between the refused request and the next one').toBeGreaterThanOrEqual(1950);
      expect(gapMs, 'ms between the refused request and the next one').toBeLessThan(8000);
      const attempts = await storedAttempts(db.sql, id);
      expect(attempts.map((a) => a.outcome)).toEqual(['RETRY', 'SENT']);
      expect(attempts[0]!.error).toContain('429');
      expect(twilio.messages.filter((m) => m.body.includes(marker))).toHaveLength(1);
    });

    it('is refused with 400 channel_not_configured by an API without the SMS variables, and nothing is stored', async () => {
      const userId = await user({ phone: '+14155550102' });
      const res = await request('POST', `${apiWithoutSms}/notifications`, { user_id: userId, type: 'SMS', body: 'never' });
      expect(res.status).toBe(400);
      const { error } = res.json as ErrorJson;
      expect(error.code).toBe('channel_not_configured');
      expect(error.message).toContain('SMS_ACCOUNT_SID');
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where user_id = ${userId}`;
      expect(row!.n).toBe(0);
    });
  });

  describe('PUSH', () => {
    function subscribe(): SubscriptionJson {
      return push.subscribe({ applicationServerKey: vapid.publicKey });
    }

    async function subscriptionsOf(userId: string): Promise<SubscriptionJson[]> {
      const res = await request('GET', `${api}/users/${userId}`);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return (res.json as { push_subscriptions: SubscriptionJson[] }).push_subscriptions;
    }

    it('delivers the encrypted payload to both of a user\'s subscriptions, where it decrypts to the notification', async () => {
      const [first, second] = [subscribe(), subscribe()];
      const userId = await user({ push_subscriptions: [first, second] });
      const { id } = await create({ user_id: userId, type: 'PUSH', title: 'Shipped', body: 'Order 42 is on its way', data: { order: 42 } });

      expect(await reached(id, 'SENT')).toMatchObject({ retry_count: 0, error_reason: null });
      for (const subscription of [first, second]) {
        const received = push.received(subscription.endpoint);
        expect(received, subscription.endpoint).toHaveLength(1);
        expect(JSON.parse(received[0]!.text)).toEqual({ id, title: 'Shipped', body: 'Order 42 is on its way', data: { order: 42 } });
        expect(received[0]!.vapidKey).toBe(vapid.publicKey);
        expect(received[0]!.claims.sub).toBe(VAPID_SUBJECT);
      }
    });

    it('removes a subscription its push service answers 410 for, and delivers to the other: SENT', async () => {
      const [live, gone] = [subscribe(), subscribe()];
      const userId = await user({ push_subscriptions: [live, gone] });
      push.expire(gone.endpoint, 410);
      const { id } = await create({ user_id: userId, type: 'PUSH', title: 'Hi', body: 'One of two' });

      expect(await reached(id, 'SENT')).toMatchObject({ retry_count: 0, error_reason: null });
      expect(push.received(live.endpoint)).toHaveLength(1);
      expect(JSON.parse(push.received(live.endpoint)[0]!.text)).toMatchObject({ id, body: 'One of two' });
      expect(push.requestsTo(gone.endpoint).map((r) => r.status)).toEqual([410]);
      expect(await subscriptionsOf(userId)).toEqual([live]);
      expect(await outcomes(id)).toEqual(['SENT']);
    });

    it('when every subscription has expired, fails at once without a retry and removes them all', async () => {
      const [a, b] = [subscribe(), subscribe()];
      const userId = await user({ push_subscriptions: [a, b] });
      push.expire(a.endpoint, 410);
      push.expire(b.endpoint, 404);
      const { id } = await create({ user_id: userId, type: 'PUSH', body: 'Nobody home' });

      const failed = await reached(id, 'FAILED');
      expect(failed.retry_count).toBe(1);
      expect(failed.error_reason).toMatch(/expired/);
      expect(await outcomes(id)).toEqual(['FAILED']);
      expect(push.requestsTo(a.endpoint).map((r) => r.status)).toEqual([410]);
      expect(push.requestsTo(b.endpoint).map((r) => r.status)).toEqual([404]);
      expect(await subscriptionsOf(userId)).toEqual([]);
      await waitFor(`${id} on the dead-letter list ${keys.dlq}`, async () => (await redis.lrange(keys.dlq, 0, -1)).includes(id), 10_000);
    });
  });

  describe('opt-outs', () => {
    it('a user opted out of EMAIL gets nothing and the notification is SKIPPED with the reason; a critical one is delivered', async () => {
      const userId = await user({ email: 'quiet@example.com' });
      const prefs = await request('PUT', `${api}/users/${userId}/preferences`, { opted_out: ['EMAIL'] });
      expect(prefs.status, JSON.stringify(prefs.json)).toBe(200);

      const skipped = await create({ user_id: userId, type: 'EMAIL', title: 'News', body: 'Our newsletter' });
      const critical = await create({ user_id: userId, type: 'EMAIL', title: 'Sign-in', body: 'A new sign-in to your account', critical: true });

      const row = await reached(skipped.id, 'SKIPPED');
      expect(row.error_reason).toContain(`opted out of EMAIL`);
      expect(row.retry_count).toBe(0);
      expect(await outcomes(skipped.id)).toEqual(['SKIPPED']);

      expect(await reached(critical.id, 'SENT')).toMatchObject({ retry_count: 0, error_reason: null });
      expect(smtp.forId(critical.id).map((m) => m.rcptTo)).toEqual([['quiet@example.com']]);
      expect(smtp.forId(skipped.id)).toHaveLength(0);
      expect(smtp.received.filter((m) => m.rcptTo.includes('quiet@example.com'))).toHaveLength(1);
      expect(await redis.lrange(keys.dlq, 0, -1)).not.toContain(skipped.id);
    });
  });
});
