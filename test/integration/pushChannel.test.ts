import { randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { PermanentDeliveryError } from '../../internal/channels/permanentDeliveryError.ts';
import { PushChannel, type PushOptions } from '../../internal/channels/pushChannel.ts';
import { RetryLaterError } from '../../internal/channels/retryLaterError.ts';
import type { LookupAll } from '../../internal/channels/transport/addressPolicy.ts';
import { ValidationError } from '../../internal/domain/errors.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import { rejectionOf } from '../support/expectedErrors.ts';
import { claimedRow } from '../support/notificationRow.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import type { PushService, SubscriptionJson } from '../support/pushService.ts';
import { useTestScope } from '../support/testScope.ts';
import { deliverThroughChannel } from '../../internal/worker/channelDelivery.ts';
import { closedPort, silentLogger } from './helpers.ts';

const SUBJECT = 'mailto:ops@herald.example';
const vapid = { ...webpush.generateVAPIDKeys(), subject: SUBJECT };

const db = useTestDatabase();
const scope = useTestScope('file');
let service: PushService;

beforeAll(async () => {
  service = await scope.pushService();
});

const opened: PushChannel[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function pushChannel(overrides: Partial<PushOptions> = {}): PushChannel {
  const channel = new PushChannel({ vapid, timeoutMs: 2000, allowPrivate: true, ...overrides });
  opened.push(channel);
  return channel;
}

/** A resolver answering the n-th lookup with `answers[n]` (the last answer repeats), recording the names asked. */
function fakeResolver(...answers: string[][]): { lookup: LookupAll; asked: string[] } {
  const asked: string[] = [];
  const lookup: LookupAll = (hostname, _options, callback) => {
    const answer = answers[Math.min(asked.length, answers.length - 1)]!;
    asked.push(hostname);
    const addresses: LookupAddress[] = answer.map((address) => ({ address, family: 4 }));
    setImmediate(() => callback(null, addresses));
  };
  return { lookup, asked };
}

/** The subscription's endpoint with its host replaced by a name only the test's resolver knows. */
function named(sub: SubscriptionJson, hostname: string): SubscriptionJson {
  const url = new URL(sub.endpoint);
  url.hostname = hostname;
  return { ...sub, endpoint: url.toString() };
}

function pushRow(userId: string, fields: Partial<NotificationRow> = {}): NotificationRow {
  return claimedRow({
    type: 'PUSH',
    user_id: userId,
    title: 'Order shipped',
    body: 'Your order #42 is on its way',
    data: { order: 42, url: '/orders/42', nested: { ok: true } },
    ...fields,
  });
}

/** A new user holding these subscriptions, stored as `PUT /users/:id` stores them. */
async function userWith(...subscriptions: SubscriptionJson[]): Promise<string> {
  const userId = `user-${randomUUID()}`;
  for (const s of subscriptions) {
    await db.sql`insert into push_subscriptions ${db.sql({ user_id: userId, endpoint: s.endpoint, p256dh: s.keys.p256dh, auth: s.keys.auth })}`;
  }
  return userId;
}

async function storedEndpoints(userId: string): Promise<string[]> {
  const rows = await db.sql<{ endpoint: string }[]>`select endpoint from push_subscriptions where user_id = ${userId} order by endpoint`;
  return rows.map((r) => r.endpoint);
}

/**
 * Delivers as the worker's delivery step does: the user's stored subscriptions passed in, those the
 * push service says are gone removed afterwards.
 */
function deliver(channel: PushChannel, row: NotificationRow, signal = new AbortController().signal): Promise<void> {
  return deliverThroughChannel(db.sql, channel, row, signal, silentLogger());
}

/** The error that delivery fails with; fails the test when it succeeds. */
function deliveryError(channel: PushChannel, row: NotificationRow, signal = new AbortController().signal): Promise<Error> {
  return rejectionOf(Error, deliver(channel, row, signal), 'delivery');
}

/** The error that delivery fails with for good, sparing the retries; fails the test otherwise. */
function permanentFailure(channel: PushChannel, row: NotificationRow): Promise<PermanentDeliveryError> {
  return rejectionOf(PermanentDeliveryError, deliver(channel, row), 'delivery');
}

function payloadOf(row: NotificationRow): unknown {
  return { id: row.id, title: row.title, body: row.body, data: row.data };
}

describe('PushChannel.deliver to a Web Push service', () => {
  it('sends the notification encrypted for the subscription and signed with the VAPID key', async () => {
    const sub = service.subscribe({ applicationServerKey: vapid.publicKey });
    const row = pushRow(await userWith(sub));
    const before = Math.floor(Date.now() / 1000);

    await deliver(pushChannel(), row);

    expect(service.requestsTo(sub.endpoint).map((r) => [r.status, r.refusal])).toEqual([[201, undefined]]);
    const [message] = service.received(sub.endpoint);
    expect(JSON.parse(message!.text)).toEqual(payloadOf(row));
    expect(message!.vapidKey).toBe(vapid.publicKey);
    expect(message!.claims.aud).toBe(service.origin);
    expect(message!.claims.sub).toBe(SUBJECT);
    expect(message!.claims.exp).toBeGreaterThan(before);
    expect(message!.claims.exp).toBeLessThanOrEqual(before + 24 * 60 * 60 + 1);
    expect(message!.headers['content-encoding']).toBe('aes128gcm');
    expect(message!.headers.ttl).toBe(String(24 * 60 * 60));
    expect(message!.headers.topic).toBe(row.id.replaceAll('-', ''));
  });

  it('delivers to every subscription of the user, each encrypted for its own keys', async () => {
    const a = service.subscribe();
    const b = service.subscribe();
    const row = pushRow(await userWith(a, b));
    await deliver(pushChannel(), row);
    for (const sub of [a, b]) {
      const messages = service.received(sub.endpoint);
      expect(messages).toHaveLength(1);
      expect(JSON.parse(messages[0]!.text)).toEqual(payloadOf(row));
    }
  });

  it('removes a subscription answered 410 and still delivers to the other one', async () => {
    const gone = service.subscribe();
    const live = service.subscribe();
    service.expire(gone.endpoint, 410);
    const userId = await userWith(gone, live);
    const row = pushRow(userId);

    await expect(deliver(pushChannel(), row)).resolves.toBeUndefined();

    expect(service.requestsTo(gone.endpoint).map((r) => r.status)).toEqual([410]);
    expect(service.received(live.endpoint)).toHaveLength(1);
    expect(await storedEndpoints(userId)).toEqual([live.endpoint]);
  });

  it('fails for good, and removes them, when every subscription is gone (404 or 410)', async () => {
    const a = service.subscribe();
    const b = service.subscribe();
    service.expire(a.endpoint, 404);
    service.expire(b.endpoint, 410);
    const userId = await userWith(a, b);

    const err = await permanentFailure(pushChannel(), pushRow(userId));

    expect(err.message).toBe(`every push subscription of user ${userId} has expired; they were removed`);
    expect(await storedEndpoints(userId)).toEqual([]);
  });

  it('asks to retry later when the push service answers 429 with Retry-After', async () => {
    const sub = service.subscribe();
    service.failNext(sub.endpoint, { status: 429, retryAfter: '3' });
    const userId = await userWith(sub);

    const err = await deliveryError(pushChannel(), pushRow(userId));

    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).retryAfterMs).toBe(3000);
    expect(err.message).toContain('429');
    expect(service.received(sub.endpoint)).toHaveLength(0);
    expect(await storedEndpoints(userId)).toEqual([sub.endpoint]);
  });

  it('waits for the longest Retry-After among the subscriptions', async () => {
    const a = service.subscribe();
    const b = service.subscribe();
    service.failNext(a.endpoint, { status: 429, retryAfter: '3' });
    service.failNext(b.endpoint, { status: 503, retryAfter: '7' });

    const err = await deliveryError(pushChannel(), pushRow(await userWith(a, b)));

    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).retryAfterMs).toBe(7000);
  });

  it.each([
    { status: 500 },
    { status: 502 },
    { status: 503 },
    { status: 429 },
    { status: 408 },
    { status: 429, retryAfter: 'soon' },
  ])('treats $status (Retry-After $retryAfter) as worth a retry with the usual backoff', async (answer) => {
    const sub = service.subscribe();
    service.failNext(sub.endpoint, answer);
    const userId = await userWith(sub);

    const err = await deliveryError(pushChannel(), pushRow(userId));

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err).not.toBeInstanceOf(RetryLaterError);
    expect(err.message).toContain(`answered ${answer.status}`);
    expect(await storedEndpoints(userId)).toEqual([sub.endpoint]);
  });

  it('treats a push service nobody listens on as worth a retry', async () => {
    const sub = service.subscribe();
    const unreachable = { ...sub, endpoint: `http://127.0.0.1:${await closedPort()}/push/x` };

    const err = await deliveryError(pushChannel(), pushRow(await userWith(unreachable)));

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/request failed: ECONNREFUSED/);
  });

  it.each([400, 403, 413])('treats %i as a permanent failure, keeping the subscription and the service\'s reason', async (status) => {
    const sub = service.subscribe();
    service.failNext(sub.endpoint, { status, body: 'UnauthorizedRegistration' });
    const userId = await userWith(sub);

    const err = await permanentFailure(pushChannel(), pushRow(userId));

    expect(err.message).toContain(`answered ${status}: UnauthorizedRegistration`);
    expect(await storedEndpoints(userId)).toEqual([sub.endpoint]);
  });

  it('keeps the VAPID token out of the error when the push service echoes the Authorization header', async () => {
    const sub = service.subscribe();
    service.failNext(sub.endpoint, { status: 400, echoAuthorization: true });

    const err = await permanentFailure(pushChannel(), pushRow(await userWith(sub)));

    const [request] = service.requestsTo(sub.endpoint);
    const token = /^vapid t=([^,\s]+)/.exec(String(request!.headers.authorization))![1]!;
    expect(err.message).toContain('answered 400: you sent vapid t=[redacted]');
    expect(err.message).not.toContain(token.slice(0, 40));
    expect(err.message).not.toContain(token.split('.')[2]!.slice(0, 20));
  });

  it('fails for good when the subscription belongs to another VAPID key (403 from the service)', async () => {
    const sub = service.subscribe({ applicationServerKey: vapid.publicKey });
    const otherKeys = { ...webpush.generateVAPIDKeys(), subject: SUBJECT };

    const err = await permanentFailure(pushChannel({ vapid: otherKeys }), pushRow(await userWith(sub)));

    expect(err.message).toContain('answered 403');
    expect(err.message).toContain('applicationServerKey');
    expect(service.received(sub.endpoint)).toHaveLength(0);
  });

  /** A user with two subscriptions: the push service answers the first's next push `status`, and the second has expired. */
  async function userWithFailingAndExpired(status: number): Promise<{ userId: string; failing: SubscriptionJson }> {
    const failing = service.subscribe();
    const gone = service.subscribe();
    service.failNext(failing.endpoint, { status });
    service.expire(gone.endpoint);
    return { userId: await userWith(failing, gone), failing };
  }

  it('retries when one subscription failed for now even if another expired, and removes the expired one', async () => {
    const { userId, failing } = await userWithFailingAndExpired(500);

    const err = await deliveryError(pushChannel(), pushRow(userId));

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('answered 500');
    expect(err.message).toContain('answered 410, expired and removed');
    expect(await storedEndpoints(userId)).toEqual([failing.endpoint]);
  });

  it('fails for good with every subscription\'s outcome when one was refused and the other expired', async () => {
    const { userId, failing: refused } = await userWithFailingAndExpired(400);

    const err = await permanentFailure(pushChannel(), pushRow(userId));

    expect(err.message).toMatch(new RegExp(`^push to user ${userId} failed: 127\\.0\\.0\\.1:\\d+/….{6} answered 400.*; 127\\.0\\.0\\.1:\\d+/….{6} answered 410`));
    expect(await storedEndpoints(userId)).toEqual([refused.endpoint]);
  });

  it('counts as delivered when one subscription took it and another failed for now', async () => {
    const failing = service.subscribe();
    const live = service.subscribe();
    service.failNext(failing.endpoint, { status: 500 });

    await expect(deliver(pushChannel(), pushRow(await userWith(failing, live)))).resolves.toBeUndefined();

    expect(service.received(live.endpoint)).toHaveLength(1);
  });

  it('fails for good when the user has no push subscriptions', async () => {
    const userId = `user-${randomUUID()}`;
    const err = await permanentFailure(pushChannel(), pushRow(userId));
    expect(err.message).toBe(`user ${userId} has no push subscriptions`);
  });

  it('fails for good, without sending, on an endpoint that is not an http(s) URL or keys it cannot encrypt for', async () => {
    const sub = service.subscribe();
    const notHttp = { ...sub, endpoint: 'data:text/plain,ok' };
    const badKeys = { endpoint: `${service.origin}/push/bad-keys`, keys: { p256dh: 'AAAA', auth: sub.keys.auth } };

    const err = await permanentFailure(pushChannel(), pushRow(await userWith(notHttp, badKeys)));

    expect(err.message).toContain('endpoint is not an http(s) URL');
    expect(err.message).toContain('cannot encrypt for it');
    expect(service.requestsTo(badKeys.endpoint)).toHaveLength(0);
  });

  it('sends the largest payload Web Push carries and refuses one byte more without sending', async () => {
    const sub = service.subscribe();
    const userId = await userWith(sub);
    const base = Buffer.byteLength(JSON.stringify(payloadOf(pushRow(userId, { body: '' }))));
    const largest = pushRow(userId, { body: 'x'.repeat(3993 - base) });

    await deliver(pushChannel(), largest);
    expect(JSON.parse(service.received(sub.endpoint)[0]!.text)).toEqual(payloadOf(largest));

    const tooLarge = pushRow(userId, { body: 'x'.repeat(3994 - base) });
    const err = await permanentFailure(pushChannel(), tooLarge);
    expect(err.message).toContain('3994 bytes');
    expect(service.requestsTo(sub.endpoint)).toHaveLength(1);
  });
});

describe('PushChannel and private endpoints', () => {
  it('refuses a loopback endpoint without sending when private targets are not allowed', async () => {
    const sub = service.subscribe();
    const userId = await userWith(sub);

    const err = await permanentFailure(pushChannel({ allowPrivate: false }), pushRow(userId));

    expect(err.message).toContain('resolves to non-public address 127.0.0.1');
    expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
    expect(await storedEndpoints(userId)).toEqual([sub.endpoint]);
  });

  it('refuses a localhost name that resolves to loopback when private targets are not allowed', async () => {
    const sub = service.subscribe();
    const url = new URL(sub.endpoint);
    url.hostname = 'localhost';

    const err = await permanentFailure(pushChannel({ allowPrivate: false }), pushRow(await userWith({ ...sub, endpoint: url.toString() })));

    expect(err.message).toContain('resolves to non-public address');
    expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
  });

  it('refuses an endpoint whose name resolves to a private address, checking the one lookup it connects with', async () => {
    const sub = service.subscribe();
    const dns = fakeResolver(['127.0.0.1']);

    const err = await permanentFailure(pushChannel({ allowPrivate: false, lookup: dns.lookup }), pushRow(await userWith(named(sub, 'push.test'))));

    expect(err.message).toMatch(/push\.test:\d+\/….{6} resolves to non-public address 127\.0\.0\.1$/);
    expect(dns.asked).toEqual(['push.test']);
    expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
  });

  it.each(['::7f00:1', '::127.0.0.1', '64:ff9b::7f00:1', '::ffff:0:7f00:1', '2002:7f00:1::1'])(
    'refuses an endpoint whose name resolves to %s, an IPv6 form of loopback',
    async (address) => {
      const sub = service.subscribe();
      const dns = fakeResolver([address]);

      const err = await permanentFailure(pushChannel({ allowPrivate: false, lookup: dns.lookup }), pushRow(await userWith(named(sub, 'push.test'))));

      expect(err.message).toContain(`resolves to non-public address ${address}`);
      expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
    },
  );

  it('refuses an endpoint at an IPv4-compatible IPv6 literal without a lookup', async () => {
    const sub = service.subscribe();
    const dns = fakeResolver(['8.8.8.8']);
    const endpoint = new URL(sub.endpoint);
    endpoint.hostname = '[::7f00:1]';

    const err = await permanentFailure(pushChannel({ allowPrivate: false, lookup: dns.lookup }), pushRow(await userWith({ ...sub, endpoint: endpoint.toString() })));

    expect(err.message).toContain('resolves to non-public address ::7f00:1');
    expect(dns.asked).toEqual([]);
  });

  it('never reaches a local push service when the name answers a public address first and 127.0.0.1 after (DNS rebinding)', async () => {
    const sub = service.subscribe();
    // 127.0.0.2 plays the public address: allowed, and nothing listens there on this port.
    const dns = fakeResolver(['127.0.0.2'], ['127.0.0.1']);
    const channel = pushChannel({ allowPrivate: false, lookup: dns.lookup, isAllowed: (address) => address === '127.0.0.2' });
    const row = pushRow(await userWith(named(sub, 'rebind.test')));

    const first = await deliveryError(channel, row);
    expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
    expect(first).not.toBeInstanceOf(PermanentDeliveryError);
    expect(first.message).toContain('request failed: ECONNREFUSED (connect ECONNREFUSED 127.0.0.2:');
    expect(dns.asked).toEqual(['rebind.test']);

    const second = await permanentFailure(channel, row);
    expect(second.message).toContain('resolves to non-public address 127.0.0.1');
    expect(dns.asked).toEqual(['rebind.test', 'rebind.test']);

    expect(service.requestsTo(sub.endpoint)).toHaveLength(0);
  });
});

describe('PushChannel time limits', () => {
  it('gives up on a silent push service after its time limit with a retryable error that names it', async () => {
    const sub = service.subscribe();
    service.silence(sub.endpoint);
    const row = pushRow(await userWith(sub));

    const startedAt = Date.now();
    const err = await deliveryError(pushChannel({ timeoutMs: 300 }), row);
    const elapsed = Date.now() - startedAt;

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('timed out after 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1500);
    await expect.poll(() => service.requestsTo(sub.endpoint)[0]?.abandonedAt, { timeout: 5000 }).toBeDefined();
  });

  it('still counts the subscription that answered when another stays silent', async () => {
    const silent = service.subscribe();
    const live = service.subscribe();
    service.silence(silent.endpoint);

    await expect(deliver(pushChannel({ timeoutMs: 300 }), pushRow(await userWith(silent, live)))).resolves.toBeUndefined();

    expect(service.received(live.endpoint)).toHaveLength(1);
  });

  it('gives up as soon as the caller aborts, with the caller\'s reason, long before its own limit', async () => {
    const sub = service.subscribe();
    service.silence(sub.endpoint);
    const abort = new AbortController();
    const pending = deliveryError(pushChannel({ timeoutMs: 30_000 }), pushRow(await userWith(sub)), abort.signal);
    await expect.poll(() => service.requestsTo(sub.endpoint).length, { timeout: 5000 }).toBe(1);

    const abortedAt = Date.now();
    abort.abort(new Error('worker is stopping'));
    const err = await pending;

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('request failed: worker is stopping');
    expect(err.message).not.toContain('timed out');
    expect(Date.now() - abortedAt).toBeLessThan(2000);
  });
});

describe('PushChannel configuration and addresses', () => {
  it('takes no "to": the user\'s subscriptions are the address', () => {
    const channel = pushChannel();
    expect(channel.checkAddress(undefined)).toBeNull();
    let refused: unknown;
    try {
      channel.checkAddress('https://fcm.googleapis.com/fcm/send/abc');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).code).toBe('invalid_request');
    expect((refused as ValidationError).details).toEqual([expect.objectContaining({ path: 'to' })]);
    expect(channel.channel).toBe('PUSH');
    expect(channel.profileAddress).toBe('push_subscriptions');
  });

  it.each([
    { publicKey: 'not-a-key' },
    { privateKey: 'AAAA' },
    { subject: 'http://herald.example' },
  ])('refuses VAPID settings that cannot sign (%o) when it is created', (bad) => {
    expect(() => pushChannel({ vapid: { ...vapid, ...bad } })).toThrow(/^invalid VAPID configuration/);
  });
});

describe('the test push service refuses what a real one would', () => {
  async function post(endpoint: string, details: webpush.RequestDetails): Promise<{ status: number; text: string }> {
    const headers = Object.fromEntries(
      Object.entries(details.headers).filter(([n]) => n.toLowerCase() !== 'content-length').map(([n, v]) => [n, String(v)]),
    );
    const response = await fetch(endpoint, { method: 'POST', headers, body: details.body ? new Uint8Array(details.body) : undefined });
    return { status: response.status, text: await response.text() };
  }
  const options = { vapidDetails: vapid, TTL: 60, contentEncoding: 'aes128gcm' as const };

  it('a JWT not signed by the key it names', async () => {
    const sub = service.subscribe();
    const details = webpush.generateRequestDetails(sub, 'hello', options);
    const other = webpush.generateVAPIDKeys();
    details.headers.Authorization = details.headers.Authorization!.replace(/k=.*$/, `k=${other.publicKey}`);

    const answer = await post(sub.endpoint, details);

    expect(answer).toEqual({ status: 403, text: 'JWT signature does not verify with k' });
    expect(service.received(sub.endpoint)).toHaveLength(0);
  });

  it('a JWT for another push service', async () => {
    const sub = service.subscribe();
    const details = webpush.generateRequestDetails({ ...sub, endpoint: 'https://push.example/push/x' }, 'hello', options);

    const answer = await post(sub.endpoint, details);

    expect(answer.status).toBe(403);
    expect(answer.text).toContain('JWT aud https://push.example');
  });

  it('a body encrypted for another subscription', async () => {
    const sub = service.subscribe();
    const other = service.subscribe();
    const details = webpush.generateRequestDetails(other, 'hello', options);

    const answer = await post(sub.endpoint, details);

    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/^cannot decrypt/);
  });

  it('a message without TTL', async () => {
    const sub = service.subscribe();
    const details = webpush.generateRequestDetails(sub, 'hello', options);
    delete details.headers.TTL;

    expect((await post(sub.endpoint, details)).status).toBe(400);
  });
});
