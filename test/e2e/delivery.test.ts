import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../internal/platform/database.ts';
import { postNotification, statusReached, storedAttempts } from '../support/notifications.ts';
import { useTestScope, type RunningApi } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';

/** Far above any stall of a loaded machine, so no lease runs out in tests that are not about leases. */
const LONG_LEASE = { LEASE_MS: '30000' };

describe('delivery through the real processes', () => {
  const scope = useTestScope('file');
  let api: RunningApi;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await scope.receiver();
    ({ api } = await scope.services({ env: LONG_LEASE }));
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
    expect(hits[0]!.headers['webhook-signature']).toBeUndefined();
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

describe('worker settings through the real processes', () => {
  const scope = useTestScope();

  async function countByStatus(sql: Sql): Promise<Record<string, number>> {
    const rows = await sql<{ status: string; n: number }[]>`select status, count(*)::int as n from notifications group by status`;
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  it('WORKER_CONCURRENCY=2 keeps at most 2 deliveries under way; the others wait until those are answered, then all are SENT', async () => {
    const receiver = await scope.receiver(() => 'hang');
    // Hanging attempts stay far inside their own time limit for the whole test.
    const { db, api } = await scope.services({ env: { WORKER_CONCURRENCY: '2', WEBHOOK_TIMEOUT_MS: '20000', LEASE_MS: '25000' } });

    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await postNotification(api.url, { user_id: `limited-${i}`, type: 'WEBHOOK', body: `n${i}`, to: receiver.url })).id);

    await waitFor('two deliveries to reach the receiver', () => receiver.received.length >= 2);
    await sleep(1500);
    expect(receiver.received).toHaveLength(2);
    expect(await countByStatus(db.sql)).toEqual({ PROCESSING: 2, PENDING: 2 });

    receiver.respond = () => 200;
    expect(receiver.answerHanging(200)).toBe(2);
    for (const id of ids) await statusReached(db.sql, id, 'SENT');
    expect(receiver.received).toHaveLength(4);
    for (const id of ids) {
      expect(receiver.forId(id), id).toHaveLength(1);
      expect((await storedAttempts(db.sql, id)).map((a) => a.outcome)).toEqual(['SENT']);
    }
  });

  it('with WEBHOOK_SECRET, signs each webhook so that a Standard Webhooks library verifies it', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const receiver = await scope.receiver();
    const { db, api } = await scope.services({ env: { ...LONG_LEASE, WEBHOOK_SECRET: secret } });

    const { id } = await postNotification(api.url, { user_id: 'signed', type: 'WEBHOOK', body: 'signed body', to: receiver.url, data: { n: 1 } });
    await statusReached(db.sql, id, 'SENT');
    const [hit] = receiver.forId(id);
    expect(hit).toBeDefined();
    const headers = hit!.headers as Record<string, string>;
    expect(headers['webhook-signature']).toMatch(/^v1,/);

    expect(new Webhook(secret).verify(hit!.body, headers)).toMatchObject({ id, user_id: 'signed', body: 'signed body', data: { n: 1 } });
    const otherSecret = `whsec_${randomBytes(32).toString('base64')}`;
    expect(() => new Webhook(otherSecret).verify(hit!.body, headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(hit!.body.replace('signed body', 'forged body'), headers)).toThrow(WebhookVerificationError);
  });

  it('records an attempt the receiver did not answer within WEBHOOK_TIMEOUT_MS as a RETRY naming the timeout, then delivers it', async () => {
    const receiver = await scope.receiver((_, n) => (n === 0 ? 'hang' : 200));
    const { db, api, worker } = await scope.services({ env: { ...LONG_LEASE, WEBHOOK_TIMEOUT_MS: '1000' } });

    const { id } = await postNotification(api.url, { user_id: 'slow-receiver', type: 'WEBHOOK', body: 'b', to: receiver.url });
    const sent = await statusReached(db.sql, id, 'SENT');
    expect(sent).toMatchObject({ retry_count: 1, attempt: 2, error_reason: null });

    const attempts = await storedAttempts(db.sql, id);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.worker_id])).toEqual([
      [1, 'RETRY', worker.id],
      [2, 'SENT', worker.id],
    ]);
    expect(attempts[0]!.error).toContain('timed out after 1000 ms');

    const hits = receiver.forId(id);
    expect(hits).toHaveLength(2);
    // The worker hung up on the first request itself, after its time limit.
    expect(hits[0]!.abandonedAt).toBeDefined();
    expect(hits[0]!.abandonedAt! - hits[0]!.at).toBeGreaterThanOrEqual(900);
    expect(hits[1]!.abandonedAt).toBeUndefined();
  });
});
