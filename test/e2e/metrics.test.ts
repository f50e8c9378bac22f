import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import type { Stats } from '../../internal/domain/stats.ts';
import { byLabels, parseMetrics, valueOf, type Sample } from '../support/metricsText.ts';
import { serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';
import { startScenarioReceiver, type WebhookReceiver } from '../support/webhookReceiver.ts';

/** The workload: N in-app notifications, M webhooks of which K are refused for good (404). */
const N = 5;
const M = 4;
const K = 1;

describe('metrics and stats through the real processes', () => {
  const scope = useTestScope('file');
  let db: TestDatabase;
  let env: Record<string, string>;
  let receiver: WebhookReceiver;
  let api: { url: string };
  let send: string;
  let admin: string;

  beforeAll(async () => {
    db = await scope.database();
    const keys = testQueueKeys();
    env = serviceEnv(db, keys, { LEASE_MS: '30000', AUTH_DISABLED: 'false', METRICS_PORT: '0' });
    send = (await createApiKey(db.sql, 'producer', ['send', 'read'])).key;
    admin = (await createApiKey(db.sql, 'ops', ['admin'])).key;
    const started = await startScenarioReceiver();
    receiver = started.receiver;
    scope.defer(() => receiver.close());
    started.scenarios.set('permanent', () => 404);
    api = await scope.api(env);
  });

  async function get(url: string, key?: string): Promise<Response> {
    return fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  }

  async function scrape(url: string, key?: string): Promise<Sample[]> {
    const res = await get(`${url}/metrics`, key);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parseMetrics(await res.text());
  }

  async function stats(): Promise<Stats> {
    const res = await get(`${api.url}/stats`, admin);
    expect(res.status).toBe(200);
    return (await res.json()) as Stats;
  }

  it(`counts ${N} in-app notifications and ${M} webhooks, ${K} of them failing for good, on the API's and the worker's /metrics and in /stats`, async () => {
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${api.url}/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${send}` },
        body: JSON.stringify({ user_id: `app-${i}`, type: 'IN_APP', body: `n${i}` }),
      });
      expect(res.status).toBe(201);
    }
    for (let i = 0; i < M; i++) {
      const res = await fetch(`${api.url}/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${send}` },
        body: JSON.stringify({ user_id: `hook-${i}`, type: 'WEBHOOK', body: `w${i}`, to: receiver.url, data: { scenario: i < K ? 'permanent' : 'ok' } }),
      });
      expect(res.status).toBe(201);
    }

    // The API's own port answers /metrics and /stats to the admin scope only.
    expect((await get(`${api.url}/metrics`)).status).toBe(401);
    expect((await get(`${api.url}/metrics`, send)).status).toBe(403);
    expect((await get(`${api.url}/stats`)).status).toBe(401);
    expect((await get(`${api.url}/stats`, send)).status).toBe(403);

    // No worker yet: everything waits in the queue.
    expect(valueOf(await scrape(api.url, admin), 'herald_queue_depth')).toBe(N + M);
    expect(await stats()).toMatchObject({ queue_size: N + M, dlq_size: 0, workers: 0, by_status: { PENDING: N + M } });

    const worker = await scope.worker(env);
    const listening = await worker.process.waitForLog('metrics listening');
    const workerUrl = `http://127.0.0.1:${String(listening.port)}`;

    await waitFor('every notification finished', async () => {
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where status in ('PENDING', 'PROCESSING')`;
      return row!.n === 0;
    });
    await waitFor('the dead letters pushed', async () => (await stats()).dlq_size === K);

    // The worker's port takes no key: it is for the scraper on the private network.
    const w = await scrape(workerUrl);
    expect(byLabels(w, 'herald_notifications_sent_total', ['channel'])).toMatchObject({ IN_APP: N, WEBHOOK: M - K, EMAIL: 0 });
    expect(byLabels(w, 'herald_notifications_failed_total', ['channel'])).toMatchObject({ IN_APP: 0, WEBHOOK: K });
    expect(byLabels(w, 'herald_notifications_retried_total', ['channel'])).toMatchObject({ IN_APP: 0, WEBHOOK: 0 });
    expect(byLabels(w, 'herald_delivery_attempt_duration_seconds_count', ['channel', 'outcome'])).toEqual({
      'IN_APP SENT': N,
      'WEBHOOK SENT': M - K,
      'WEBHOOK FAILED': K,
    });
    expect(byLabels(w, 'herald_delivery_latency_seconds_count', ['channel'])).toEqual({ IN_APP: N, WEBHOOK: M - K });
    expect(valueOf(w, 'herald_deliveries_in_flight')).toBe(0);
    expect(valueOf(w, 'herald_worker_info', { worker_id: worker.id })).toBe(1);
    expect(valueOf(w, 'herald_queue_depth')).toBe(0);
    expect(valueOf(w, 'herald_dlq_depth')).toBe(K);
    expect(valueOf(w, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    const a = await scrape(api.url, admin);
    expect(byLabels(a, 'herald_notifications_created_total', ['channel'])).toMatchObject({ IN_APP: N, WEBHOOK: M, EMAIL: 0 });
    expect(valueOf(a, 'herald_http_requests_total', { method: 'POST', route: '/notifications', status: '201' })).toBe(N + M);
    expect(valueOf(a, 'herald_http_request_duration_seconds_count', { method: 'POST', route: '/notifications', status: '201' })).toBe(N + M);
    expect(valueOf(a, 'herald_http_requests_total', { method: 'GET', route: '/metrics', status: '401' })).toBe(1);
    expect(valueOf(a, 'herald_queue_depth')).toBe(0);
    expect(valueOf(a, 'herald_dlq_depth')).toBe(K);

    const final = await stats();
    expect(final).toMatchObject({
      sent_total: N + M - K,
      failed_total: K,
      failed_attempts_total: K,
      retries_total: 0,
      queue_size: 0,
      dlq_size: K,
      workers: 1,
      by_status: { PENDING: 0, PROCESSING: 0, SENT: N + M - K, FAILED: K, SKIPPED: 0 },
    });
    expect(final.average_delivery_ms).toBeGreaterThan(0);
  });
});
