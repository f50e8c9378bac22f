import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../support/testEnvironment.ts';
import { useTestScope, type RunningApi, type RunningWorker } from '../support/testScope.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';
import { postNotification } from '../support/notifications.ts';
import { waitFor } from '../support/waitFor.ts';

const WEBHOOKS = 200;
const IN_APPS = 40;
const IN_APP_EVERY = (WEBHOOKS + IN_APPS) / IN_APPS;
const INBOX_USER = 'volume-inbox-user';
/** Requests the test keeps in flight against the API at once. */
const POST_PARALLELISM = 8;

describe('exactly-once delivery at volume with two worker processes', () => {
  const scope = useTestScope('file');
  let db: TestDatabase;
  let api: RunningApi;
  let workers: RunningWorker[] = [];
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    // A short delay per answer keeps each worker's slots busy, so work spreads across both.
    receiver = await scope.receiver(() => ({ status: 200, delayMs: 20 }));
    // A lease far above any stall of a loaded machine: every notification is attempted exactly once.
    ({ db, api, workers } = await scope.services({ env: { WORKER_CONCURRENCY: '4', LOG_LEVEL: 'info', LEASE_MS: '30000' }, workers: 2 }));
  });

  it('sends every notification, each webhook-id exactly once and each IN_APP once into the inbox, with both workers taking part', async () => {
    // Every sixth notification is IN_APP, spread among the webhooks.
    const kinds = Array.from({ length: WEBHOOKS + IN_APPS }, (_, i) => (i % IN_APP_EVERY === 0 ? 'IN_APP' : 'WEBHOOK'));
    expect(kinds.filter((k) => k === 'IN_APP')).toHaveLength(IN_APPS);

    const webhookIds: string[] = [];
    const inAppIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: POST_PARALLELISM }, async () => {
        while (next < kinds.length) {
          const i = next++;
          const kind = kinds[i]!;
          const created =
            kind === 'WEBHOOK'
              ? await postNotification(api.url, { user_id: `volume-${i}`, type: 'WEBHOOK', body: `n${i}`, to: receiver.url, data: { i } })
              : await postNotification(api.url, { user_id: INBOX_USER, type: 'IN_APP', title: `t${i}`, body: `n${i}` });
          (kind === 'WEBHOOK' ? webhookIds : inAppIds).push(created.id);
        }
      }),
    );
    expect(webhookIds).toHaveLength(WEBHOOKS);
    expect(inAppIds).toHaveLength(IN_APPS);

    await waitFor(
      'every notification SENT',
      async () => {
        const [row] = await db.sql<{ sent: number }[]>`select count(*)::int as sent from notifications where status = 'SENT'`;
        return row!.sent === WEBHOOKS + IN_APPS;
      },
      120_000,
      250,
    );
    const byStatus = await db.sql<{ status: string; n: number }[]>`select status, count(*)::int as n from notifications group by status`;
    expect(byStatus).toEqual([{ status: 'SENT', n: WEBHOOKS + IN_APPS }]);

    const receivedIds = receiver.received.map((r) => String(r.headers['webhook-id']));
    expect(receivedIds).toHaveLength(WEBHOOKS);
    expect(new Set(receivedIds).size).toBe(WEBHOOKS);
    expect([...receivedIds].sort()).toEqual([...webhookIds].sort());
    for (const hit of receiver.received) expect(hit.json.id).toBe(hit.headers['webhook-id']);

    const inbox = (await (await fetch(`${api.url}/users/${INBOX_USER}/inbox?limit=200`)).json()) as { items: { notification_id: string }[] };
    const inboxIds = inbox.items.map((item) => item.notification_id);
    expect(inboxIds).toHaveLength(IN_APPS);
    expect([...inboxIds].sort()).toEqual([...inAppIds].sort());

    const attempts = await db.sql<{ notification_id: string; outcome: string; worker_id: string }[]>`
      select notification_id, outcome, worker_id from notification_attempts`;
    expect(attempts).toHaveLength(WEBHOOKS + IN_APPS);
    expect(new Set(attempts.map((a) => a.notification_id)).size).toBe(WEBHOOKS + IN_APPS);
    expect(new Set(attempts.map((a) => a.outcome))).toEqual(new Set(['SENT']));

    const workerIds = workers.map((w) => w.id);
    expect(new Set(workerIds).size).toBe(2);
    const perWorker = new Map(workerIds.map((id) => [id, attempts.filter((a) => a.worker_id === id).length]));
    expect(new Set(attempts.map((a) => a.worker_id))).toEqual(new Set(workerIds));
    for (const [workerId, count] of perWorker) expect(count, `notifications sent by ${workerId}`).toBeGreaterThan(0);
  });
});
