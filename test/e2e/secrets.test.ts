import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webpush from 'web-push';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { TestScope, type RunningWorker } from '../support/testScope.ts';
import { TwilioServer } from '../support/twilioServer.ts';
import { waitFor } from '../support/waitFor.ts';
import type { ServiceProcess } from '../support/serviceProcess.ts';

/**
 * Secrets reach neither the logs nor an answer: every process runs at the chattiest log level,
 * each provider is made to fail (so its error lands in logs and in error_reason), and every line
 * and answer is searched for every secret.
 */
describe('secrets stay secret', () => {
  const scope = new TestScope();
  const vapid = webpush.generateVAPIDKeys();
  const smtpPassword = 'smtp-pass-7f3a9c1e5b';
  const webhookSecret = 'whsec_c2VjcmV0LWZvci1zZWNyZXRzLXRlc3Q=';
  const inboxSecret = 'inbox-secret-0123456789abcdef0123456789';
  let db: TestDatabase;
  let api: { process: ServiceProcess; url: string };
  let worker: RunningWorker;
  let wrongTwilio: TwilioServer;
  let smsToken: string;
  let apiKey: string;
  const answers: string[] = [];

  beforeAll(async () => {
    db = await scope.database();
    // The provider knows another token than ours: every SMS is refused with 401.
    wrongTwilio = await TwilioServer.start();
    scope.defer(() => wrongTwilio.close());
    smsToken = 'sms-token-9d8c7b6a5f4e3d2c';
    const smtp = await scope.smtp();
    const env = serviceEnv(db, testQueueKeys(), {
      LOG_LEVEL: 'trace',
      AUTH_DISABLED: 'false',
      LEASE_MS: '30000',
      PROVIDER_TIMEOUT_MS: '3000',
      MAX_RETRIES: '1',
      // The test server takes no login: the password is sent and refused.
      SMTP_URL: smtp.url.replace('smtp://', `smtp://mailer:${smtpPassword}@`),
      EMAIL_FROM: 'Herald <no-reply@herald.example>',
      SMS_PROVIDER_URL: wrongTwilio.url,
      SMS_ACCOUNT_SID: wrongTwilio.accountSid,
      SMS_AUTH_TOKEN: smsToken,
      SMS_FROM: '+15005550006',
      VAPID_PUBLIC_KEY: vapid.publicKey,
      VAPID_PRIVATE_KEY: vapid.privateKey,
      VAPID_SUBJECT: 'mailto:ops@herald.example',
      WEBHOOK_SECRET: webhookSecret,
      INBOX_JWT_SECRET: inboxSecret,
    });
    apiKey = (await createApiKey(db.sql, 'secrets-test', ['admin'])).key;
    [api, worker] = await Promise.all([scope.api(env), scope.worker(env)]);
  });
  afterAll(() => scope.close());

  async function call(path: string, init: RequestInit = {}, auth = `Bearer ${apiKey}`): Promise<Response> {
    const res = await fetch(`${api.url}${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: auth, ...init.headers } });
    answers.push(`${res.status} ${await res.clone().text()}`);
    return res;
  }

  it('keeps every secret out of logs, stored errors and answers while providers fail', async () => {
    await call('/users/sam', { method: 'PUT', body: JSON.stringify({ email: 'sam@example.com', phone: '+14155550100' }) });
    const ids: string[] = [];
    for (const type of ['EMAIL', 'SMS'] as const) {
      const res = await call('/notifications', { method: 'POST', body: JSON.stringify({ user_id: 'sam', type, body: 'hello' }) });
      ids.push(((await res.json()) as { id: string }).id);
    }
    await call('/notifications', { method: 'POST', body: '{}' }, `Bearer ${apiKey}x`);
    await call('/inbox', {}, `Bearer ${await issueToken('sam', inboxSecret, 60)}`);
    await call('/inbox', {}, 'Bearer not-a-token');
    await call('/stats');

    await waitFor('both notifications to finish at their providers', async () => {
      const rows = await db.sql<{ status: string }[]>`select status from notifications where id = any(${ids}::uuid[])`;
      return rows.length === 2 && rows.every((r) => r.status === 'FAILED' || r.status === 'SENT') && rows;
    }, 20_000);
    for (const id of ids) await call(`/notifications/${id}`);
    const reasons = (await db.sql<{ error_reason: string }[]>`select error_reason from notifications`).map((r) => r.error_reason).join('\n');
    expect(reasons).toContain('SMS_AUTH_TOKEN'); // the failure is there, and says what to fix

    const everything = [...api.process.output, ...worker.process.output, ...answers, reasons].join('\n');
    for (const [name, secret] of Object.entries({
      smtpPassword,
      smsToken,
      webhookSecret,
      inboxSecret,
      vapidPrivateKey: vapid.privateKey,
      apiKey,
    })) {
      expect(everything.includes(secret), `${name} appeared in a log line, an answer or an error_reason`).toBe(false);
    }
  });
});
