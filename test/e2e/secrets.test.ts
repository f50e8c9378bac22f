import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

const SMTP_PASSWORD = 'smtp-pass-7f3a9c1e5b';
const SMS_TOKEN = 'sms-token-9d8c7b6a5f4e3d2c';
const WEBHOOK_SECRET = 'whsec_c2VjcmV0LWZvci1zZWNyZXRzLXRlc3Q=';
const INBOX_SECRET = 'inbox-secret-0123456789abcdef0123456789';

/**
 * Secrets reach neither the logs nor an answer nor a stored error: every process runs at the
 * chattiest log level, every channel is used through a real server of its kind (each secret doing
 * its work on the way), each provider is made to fail (so its error lands in logs and in
 * error_reason), and every line and answer is searched for every secret.
 */
describe('secrets stay secret', () => {
  const scope = useTestScope('file');
  const vapid = webpush.generateVAPIDKeys();
  let running: Awaited<ReturnType<typeof start>>;
  const answers: string[] = [];

  /** The service, with every secret set and every provider a real server of its kind. */
  async function start() {
    const db = await scope.database();
    // The SMTP server and the SMS provider know other credentials than ours: our password and
    // token are sent, and refused, and each refusal repeats the credentials it was sent (the SMS
    // provider the Authorization header, the SMTP server the AUTH PLAIN line and the password).
    const [wrongTwilio, smtp] = await Promise.all([
      scope.twilio({ echoAuthorization: true }),
      scope.smtp({ auth: { user: 'mailer', pass: 'another-password' }, echoLogin: true }),
    ]);
    // The webhook receiver and the push service refuse too, after the secret has done its work.
    const [receiver, push] = await Promise.all([scope.receiver(() => 500), scope.pushService()]);
    const apiKey = (await createApiKey(db.sql, 'secrets-test', ['admin'])).key;
    const { api, worker } = await scope.services({
      db,
      env: {
        LOG_LEVEL: 'trace',
        AUTH_DISABLED: 'false',
        LEASE_MS: '30000',
        PROVIDER_TIMEOUT_MS: '3000',
        MAX_RETRIES: '1',
        SMTP_URL: smtp.url.replace('smtp://', `smtp://mailer:${SMTP_PASSWORD}@`),
        EMAIL_FROM: 'Herald <no-reply@herald.example>',
        SMS_PROVIDER_URL: wrongTwilio.url,
        SMS_ACCOUNT_SID: wrongTwilio.accountSid,
        SMS_AUTH_TOKEN: SMS_TOKEN,
        SMS_FROM: '+15005550006',
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        VAPID_SUBJECT: 'mailto:ops@herald.example',
        WEBHOOK_SECRET,
        INBOX_JWT_SECRET: INBOX_SECRET,
      },
    });
    return { db, api, worker, receiver, push, apiKey, smsAccountSid: wrongTwilio.accountSid };
  }

  beforeAll(async () => {
    running = await start();
  });

  async function call(path: string, init: RequestInit = {}, auth = `Bearer ${running.apiKey}`): Promise<Response> {
    const res = await fetch(`${running.api.url}${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: auth, ...init.headers } });
    answers.push(`${res.status} ${await res.clone().text()}`);
    return res;
  }

  async function send(body: Record<string, unknown>): Promise<string> {
    const res = await call('/notifications', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status, answers.at(-1)).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  /** Each notification's final status and error_reason, once every one is FAILED or SENT. */
  async function finished(ids: string[]): Promise<Map<string, { status: string; error_reason: string | null }>> {
    const rows = await waitFor('every notification to finish at its provider', async () => {
      const found = await running.db.sql<{ id: string; status: string; error_reason: string | null }[]>`
        select id, status, error_reason from notifications where id = any(${ids}::uuid[])`;
      return found.length === ids.length && found.every((r) => r.status === 'FAILED' || r.status === 'SENT') && found;
    }, 20_000);
    return new Map(rows.map((r) => [r.id, r]));
  }

  it('keeps every secret out of logs, stored errors and answers while each channel is used and fails', async () => {
    const { api, worker, receiver, push, apiKey } = running;
    const refusingDevice = push.subscribe({ applicationServerKey: vapid.publicKey });
    push.failNext(refusingDevice.endpoint, { status: 403, body: 'this subscription belongs to another application server' });
    const acceptingDevice = push.subscribe({ applicationServerKey: vapid.publicKey });
    await call('/users/sam', { method: 'PUT', body: JSON.stringify({ email: 'sam@example.com', phone: '+14155550100', push_subscriptions: [refusingDevice] }) });
    await call('/users/pat', { method: 'PUT', body: JSON.stringify({ push_subscriptions: [acceptingDevice] }) });
    const ids = {
      EMAIL: await send({ user_id: 'sam', type: 'EMAIL', body: 'hello' }),
      SMS: await send({ user_id: 'sam', type: 'SMS', body: 'hello' }),
      WEBHOOK: await send({ user_id: 'sam', type: 'WEBHOOK', body: 'hello', to: receiver.url }),
      PUSH: await send({ user_id: 'sam', type: 'PUSH', body: 'hello' }),
      acceptedPush: await send({ user_id: 'pat', type: 'PUSH', body: 'hello' }),
    };
    await call('/notifications', { method: 'POST', body: '{}' }, `Bearer ${apiKey}x`);
    await call('/inbox', {}, `Bearer ${await issueToken('sam', INBOX_SECRET, 60)}`);
    await call('/inbox', {}, 'Bearer not-a-token');
    await call('/stats');

    const outcomes = await finished(Object.values(ids));
    for (const id of Object.values(ids)) await call(`/notifications/${id}`);
    // Each failure is there and says what went wrong, without the secret involved.
    expect(outcomes.get(ids.EMAIL)).toMatchObject({ status: 'FAILED', error_reason: expect.stringContaining('535') });
    expect(outcomes.get(ids.SMS)).toMatchObject({ status: 'FAILED', error_reason: expect.stringContaining('SMS_AUTH_TOKEN') });
    expect(outcomes.get(ids.WEBHOOK)).toMatchObject({ status: 'FAILED', error_reason: expect.stringContaining('500') });
    expect(outcomes.get(ids.PUSH)).toMatchObject({ status: 'FAILED', error_reason: expect.stringContaining('403') });
    expect(outcomes.get(ids.acceptedPush)).toMatchObject({ status: 'SENT' });

    // The secrets did their work: the webhook is signed with WEBHOOK_SECRET, the push with the VAPID key.
    const [hook] = receiver.forId(ids.WEBHOOK);
    expect(new Webhook(WEBHOOK_SECRET).verify(hook!.body, hook!.headers as Record<string, string>)).toMatchObject({ id: ids.WEBHOOK });
    expect(push.requestsTo(refusingDevice.endpoint)).toHaveLength(1);
    expect(push.received(acceptingDevice.endpoint)).toEqual([expect.objectContaining({ vapidKey: vapid.publicKey })]);

    const reasons = [...outcomes.values()].map((r) => r.error_reason ?? '').join('\n');
    const everything = [...api.process.output, ...worker.process.output, ...answers, reasons].join('\n');
    for (const [name, secret] of Object.entries({
      SMTP_PASSWORD,
      SMS_TOKEN,
      WEBHOOK_SECRET,
      // Standard Webhooks signs with the key the secret encodes: that must not show either.
      webhookKey: WEBHOOK_SECRET.slice('whsec_'.length),
      INBOX_SECRET,
      vapidPrivateKey: vapid.privateKey,
      apiKey,
      // The encodings the refusals echoed them in.
      smsBasic: Buffer.from(`${running.smsAccountSid}:${SMS_TOKEN}`).toString('base64'),
      smsTokenBase64: Buffer.from(SMS_TOKEN).toString('base64'),
      smtpAuthPlain: Buffer.from(`\0mailer\0${SMTP_PASSWORD}`).toString('base64'),
      smtpPasswordBase64: Buffer.from(SMTP_PASSWORD).toString('base64'),
    })) {
      expect(everything.includes(secret), `${name} appeared in a log line, an answer or an error_reason`).toBe(false);
    }
  });
});
