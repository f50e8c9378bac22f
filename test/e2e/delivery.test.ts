import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { startApi, startWorker, type ServiceProcess } from '../support/serviceProcess.ts';
import { WebhookReceiver } from '../support/webhookReceiver.ts';
import { waitFor } from '../support/waitFor.ts';

describe('delivery through the real processes', () => {
  let db: TestDatabase;
  let api: { process: ServiceProcess; url: string };
  let worker: ServiceProcess;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = serviceEnv(db, testQueueKeys());
    receiver = await WebhookReceiver.start();
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });

  afterAll(async () => {
    await Promise.all([api?.process.stop(), worker?.stop()]);
    await receiver?.close();
    await db?.drop();
  });

  async function post(body: unknown): Promise<Response> {
    return fetch(`${api.url}/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async function statusOf(id: string): Promise<string> {
    const res = await fetch(`${api.url}/notifications/${id}`);
    return ((await res.json()) as { status: string }).status;
  }

  it('delivers a webhook once, with the Standard Webhooks headers, and marks it SENT', async () => {
    const res = await post({ user_id: 'u-1', type: 'WEBHOOK', title: 'Hi', body: 'Hello', to: receiver.url, data: { k: 1 } });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; status: string };
    expect(created.status).toBe('PENDING');

    await waitFor('SENT', async () => (await statusOf(created.id)) === 'SENT');
    const hits = receiver.forId(created.id);
    expect(hits).toHaveLength(1);
    expect(hits[0]!.headers['content-type']).toBe('application/json');
    expect(Number(hits[0]!.headers['webhook-timestamp'])).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(hits[0]!.json).toMatchObject({ id: created.id, user_id: 'u-1', type: 'WEBHOOK', body: 'Hello', data: { k: 1 } });
  });

  it('delivers IN_APP into the user inbox', async () => {
    const res = await post({ user_id: 'inbox-user', type: 'IN_APP', title: 'T', body: 'B' });
    const { id } = (await res.json()) as { id: string };
    await waitFor('SENT', async () => (await statusOf(id)) === 'SENT');
    const inbox = (await (await fetch(`${api.url}/users/inbox-user/inbox`)).json()) as { items: { notification_id: string; body: string }[] };
    expect(inbox.items.map((i) => i.notification_id)).toEqual([id]);
    expect(inbox.items[0]!.body).toBe('B');
  });
});
