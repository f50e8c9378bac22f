import { setTimeout as sleep } from 'node:timers/promises';
import { register } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { createChannels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import { WorkerMetrics } from '../../internal/metrics/workerMetrics.ts';
import { connectBlockingRedis, connectRedis } from '../../internal/platform/redis.ts';
import type { Stats } from '../../internal/domain/stats.ts';
import { DueRowScheduler } from '../../internal/worker/maintenance/dueRowScheduler.ts';
import { Periodic } from '../../internal/worker/periodic.ts';
import { Worker } from '../../internal/worker/worker.ts';
import { byLabels, parseMetrics, valueOf, type Sample } from '../support/metricsText.ts';
import { createTestDatabase, testRedisUrl, type TestDatabase } from '../support/testEnvironment.ts';
import { waitFor } from '../support/waitFor.ts';
import { startScenarioReceiver, type WebhookReceiver } from '../support/webhookReceiver.ts';
import { buildApi, closedPort, sendJson, silentLogger, type TestApi } from './helpers.ts';

const LEASE_MS = 30_000;
const WORKER_ID = 'metrics-worker';

describe('metrics and stats', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    const started = await startScenarioReceiver();
    receiver = started.receiver;
    started.scenarios.set('permanent', () => 404);
    started.scenarios.set('flaky', (hit) => (hit === 1 ? 503 : 200));
    started.scenarios.set('hang', () => 'hang');
    cleanups.push(() => receiver.close());
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function database(): Promise<TestDatabase> {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    return db;
  }

  async function api(db: TestDatabase, env: Record<string, string> = {}, options: Parameters<typeof buildApi>[1] = {}): Promise<TestApi> {
    const built = await buildApi(db, { ...options, env: { WEBHOOK_ALLOW_PRIVATE: 'true', ...env } });
    cleanups.push(() => built.close());
    return built;
  }

  /** The real Worker, with the due-row scheduler to queue its retries, counting into a registry of its own. */
  function startWorker(api: TestApi): WorkerMetrics {
    const config = parseConfig({ WEBHOOK_ALLOW_PRIVATE: 'true', LEASE_MS: String(LEASE_MS), LOG_LEVEL: 'silent' });
    const metrics = new WorkerMetrics(api.queue, WORKER_ID);
    const blocking = connectBlockingRedis(testRedisUrl(), 1);
    const policy = { maxRetries: 3, baseMs: 50, maxMs: 100 };
    const logger = silentLogger();
    const worker = new Worker({
      sql: api.sql,
      queue: api.queue,
      blocking,
      renewals: api.sql,
      channels: createChannels(config),
      policy,
      leaseMs: LEASE_MS,
      concurrency: 4,
      logger,
      workerId: WORKER_ID,
      metrics,
    });
    const scheduler = new DueRowScheduler({ sql: api.sql, queue: api.queue, leaseMs: LEASE_MS, intervalMs: 100 });
    const scheduling = new Periodic(async () => void (await scheduler.run()), scheduler.intervalMs, () => {});
    worker.start();
    scheduling.start();
    cleanups.push(async () => {
      receiver.answerHanging(200);
      await Promise.all([scheduling.stop(), worker.stop(1000)]);
      blocking.disconnect();
    });
    return metrics;
  }

  async function scrape(api: TestApi, headers: Record<string, string> = {}): Promise<Sample[]> {
    const res = await api.app.request('/metrics', { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parseMetrics(await res.text());
  }

  async function stats(api: TestApi): Promise<Stats> {
    const res = await api.app.request('/stats');
    expect(res.status).toBe(200);
    return (await res.json()) as Stats;
  }

  async function post(api: TestApi, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
    return sendJson(api.app, 'POST', '/notifications', body, headers);
  }

  async function unfinished(api: TestApi): Promise<number> {
    const [row] = await api.sql<{ n: number }[]>`select count(*)::int as n from notifications where status in ('PENDING', 'PROCESSING')`;
    return row!.n;
  }

  it('counts a known workload per channel and outcome, as PostgreSQL records it, and /stats says what SQL says', async () => {
    const db = await database();
    const app = await api(db);
    const hook = (scenario: string) => ({ user_id: `hook-${scenario}`, type: 'WEBHOOK', body: scenario, to: receiver.url, data: { scenario } });

    expect((await sendJson(app.app, 'PUT', '/users/opted/preferences', { opted_out: ['IN_APP'] })).status).toBe(200);
    // IN_APP: 2 + 1 keyed (its repeat creates nothing) + 2 by a user list + 1 to a user who opted out = 6.
    for (const user of ['a', 'b']) expect((await post(app, { user_id: user, type: 'IN_APP', body: 'hi' })).status).toBe(201);
    expect((await post(app, { user_id: 'c', type: 'IN_APP', body: 'hi' }, { 'idempotency-key': 'once' })).status).toBe(201);
    expect((await post(app, { user_id: 'c', type: 'IN_APP', body: 'hi' }, { 'idempotency-key': 'once' })).status).toBe(200);
    expect((await post(app, { user_ids: ['d', 'e'], type: 'IN_APP', body: 'hi' })).status).toBe(201);
    expect((await post(app, { user_id: 'opted', type: 'IN_APP', body: 'hi' })).status).toBe(201);
    // WEBHOOK: 2 delivered, 1 refused for good (404), 1 delivered on its second attempt = 4.
    for (const scenario of ['ok-1', 'ok-2', 'permanent', 'flaky']) expect((await post(app, hook(scenario))).status).toBe(201);
    const [first] = await app.sql<{ id: string }[]>`select id from notifications where user_id = 'a'`;
    expect((await app.app.request(`/notifications/${first!.id}`)).status).toBe(200);
    expect((await app.app.request('/no/such/route')).status).toBe(404);

    // Nothing works on the queue yet: it holds the 10 ids, and /stats sees them PENDING.
    const waiting = await scrape(app);
    expect(valueOf(waiting, 'herald_queue_depth')).toBe(10);
    expect(valueOf(waiting, 'herald_dlq_depth')).toBe(0);
    expect(await stats(app)).toMatchObject({ queue_size: 10, dlq_size: 0, workers: 0, sent_total: 0, by_status: { PENDING: 10 } });

    // Every notification waits a second before a worker takes it, so created → SENT is at least that.
    await sleep(1000);
    const worker = startWorker(app);
    await waitFor('every notification finished', async () => (await unfinished(app)) === 0);
    await waitFor('the dead-letter push', async () => (await app.queue.deadLetterDepth()) === 1);

    const w = parseMetrics(await worker.registry.metrics());
    expect(byLabels(w, 'herald_notifications_sent_total', ['channel'])).toEqual({ EMAIL: 0, SMS: 0, PUSH: 0, IN_APP: 5, WEBHOOK: 3 });
    expect(byLabels(w, 'herald_notifications_failed_total', ['channel'])).toMatchObject({ IN_APP: 0, WEBHOOK: 1 });
    expect(byLabels(w, 'herald_notifications_retried_total', ['channel'])).toMatchObject({ IN_APP: 0, WEBHOOK: 1 });
    expect(byLabels(w, 'herald_notifications_skipped_total', ['channel'])).toMatchObject({ IN_APP: 1, WEBHOOK: 0 });

    // One observation per recorded attempt, labelled as notification_attempts has it.
    const attempts = await app.sql<{ k: string; n: number }[]>`
      select n.type || ' ' || a.outcome as k, count(*)::int as n
      from notification_attempts a join notifications n on n.id = a.notification_id group by 1`;
    const recorded = Object.fromEntries(attempts.map((r) => [r.k, r.n]));
    expect(recorded).toEqual({ 'IN_APP SENT': 5, 'IN_APP SKIPPED': 1, 'WEBHOOK SENT': 3, 'WEBHOOK RETRY': 1, 'WEBHOOK FAILED': 1 });
    expect(byLabels(w, 'herald_delivery_attempt_duration_seconds_count', ['channel', 'outcome'])).toEqual(recorded);
    expect(valueOf(w, 'herald_delivery_attempt_duration_seconds_sum', { channel: 'WEBHOOK', outcome: 'SENT' })).toBeGreaterThan(0);

    // created → SENT: one observation per SENT row, none under the second they waited, and the
    // sum within a moment of what the rows say (the worker observes just after its COMMIT).
    expect(byLabels(w, 'herald_delivery_latency_seconds_count', ['channel'])).toEqual({ IN_APP: 5, WEBHOOK: 3 });
    expect(valueOf(w, 'herald_delivery_latency_seconds_bucket', { channel: 'IN_APP', le: '0.5' })).toBe(0);
    expect(valueOf(w, 'herald_delivery_latency_seconds_bucket', { channel: 'IN_APP', le: '+Inf' })).toBe(5);
    const latencies = await app.sql<{ type: string; seconds: number; n: number }[]>`
      select type, sum(extract(epoch from sent_at - created_at))::float8 as seconds, count(*)::int as n
      from notifications where status = 'SENT' group by type`;
    for (const { type, seconds, n } of latencies) {
      const observed = valueOf(w, 'herald_delivery_latency_seconds_sum', { channel: type })!;
      expect(observed, type).toBeGreaterThanOrEqual(n * 1);
      expect(observed, type).toBeGreaterThanOrEqual(seconds - 0.01);
      expect(observed, type).toBeLessThanOrEqual(seconds + n * 0.5);
    }
    expect(valueOf(w, 'herald_deliveries_in_flight')).toBe(0);
    expect(valueOf(w, 'herald_worker_info', { worker_id: WORKER_ID })).toBe(1);
    expect(valueOf(w, 'herald_queue_depth')).toBe(0);
    expect(valueOf(w, 'herald_dlq_depth')).toBe(1);

    const a = await scrape(app);
    expect(byLabels(a, 'herald_notifications_created_total', ['channel'])).toEqual({ EMAIL: 0, SMS: 0, PUSH: 0, IN_APP: 6, WEBHOOK: 4 });
    const requests = {
      'PUT /users/:userId/preferences 200': 1,
      'POST /notifications 201': 9,
      'POST /notifications 200': 1,
      'GET /notifications/:id 200': 1,
      'GET unmatched 404': 1,
      'GET /metrics 200': 1,
      'GET /stats 200': 1,
    };
    expect(byLabels(a, 'herald_http_requests_total', ['method', 'route', 'status'])).toEqual(requests);
    expect(byLabels(a, 'herald_http_request_duration_seconds_count', ['method', 'route', 'status'])).toEqual(requests);
    expect(valueOf(a, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(a, 'herald_dlq_depth')).toBe(1);
    // Each process counts into its own registry, never prom-client's global one.
    expect(register.getMetricsAsArray().filter((m) => m.name.startsWith('herald_'))).toEqual([]);

    const [averageMs] = await app.sql<{ ms: number }[]>`
      select round(avg(extract(epoch from sent_at - created_at) * 1000))::float8 as ms from notifications where status = 'SENT'`;
    expect(averageMs!.ms).toBeGreaterThanOrEqual(1000);
    expect(await stats(app)).toEqual({
      sent_total: 8,
      failed_total: 1,
      // RETRY and FAILED; the SKIPPED attempt is no failure.
      failed_attempts_total: 2,
      retries_total: 1,
      average_delivery_ms: averageMs!.ms,
      queue_size: 0,
      dlq_size: 1,
      workers: 1,
      by_status: { PENDING: 0, PROCESSING: 0, SENT: 8, FAILED: 1, SKIPPED: 1 },
    });
  });

  it('shows a delivery under way in herald_deliveries_in_flight until it ends, and its worker in /stats workers', async () => {
    const db = await database();
    const app = await api(db);
    const worker = startWorker(app);
    const inFlight = async () => valueOf(parseMetrics(await worker.registry.metrics()), 'herald_deliveries_in_flight');
    expect(await inFlight()).toBe(0);

    expect((await post(app, { user_id: 'slow', type: 'WEBHOOK', body: 'b', to: receiver.url, data: { scenario: 'hang' } })).status).toBe(201);
    await waitFor('the webhook to reach the receiver', () => receiver.received.length === 1);
    expect(await inFlight()).toBe(1);
    // No attempt is finished yet: the worker is known by the claim it holds.
    expect(await stats(app)).toMatchObject({ workers: 1, by_status: { PROCESSING: 1 } });

    expect(receiver.answerHanging(200)).toBe(1);
    await waitFor('SENT', async () => (await unfinished(app)) === 0);
    await waitFor('the delivery to end', async () => (await inFlight()) === 0);
  });

  it('asks for an API key with the admin scope on /metrics and /stats: 401 without a key, 403 with another scope', async () => {
    const db = await database();
    const app = await api(db, { AUTH_DISABLED: 'false' });
    const { key: producer } = await createApiKey(app.sql, 'producer', ['send', 'read']);
    const { key: ops } = await createApiKey(app.sql, 'ops', ['admin']);
    for (const path of ['/metrics', '/stats']) {
      const anonymous = await app.app.request(path);
      expect(anonymous.status, path).toBe(401);
      expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      const other = await app.app.request(path, { headers: { authorization: `Bearer ${producer}` } });
      expect(other.status, path).toBe(403);
      expect(((await other.json()) as { error: { code: string } }).error.code).toBe('forbidden');
      expect((await app.app.request(path, { headers: { authorization: `Bearer ${ops}` } })).status, path).toBe(200);
    }
    // The refusals are counted under the route they were refused on.
    const samples = await scrape(app, { authorization: `Bearer ${ops}` });
    expect(byLabels(samples, 'herald_http_requests_total', ['method', 'route', 'status'])).toEqual({
      'GET /metrics 401': 1,
      'GET /metrics 403': 1,
      'GET /metrics 200': 1,
      'GET /stats 401': 1,
      'GET /stats 403': 1,
      'GET /stats 200': 1,
    });
  });

  it('still answers /metrics and /stats while Redis is away, with the queue lengths unknown', async () => {
    const db = await database();
    const away = connectRedis(`redis://127.0.0.1:${await closedPort()}`);
    away.on('error', () => {});
    const app = await api(db, {}, { redis: away });
    const samples = await scrape(app);
    expect(valueOf(samples, 'herald_queue_depth')).toBeNaN();
    expect(valueOf(samples, 'herald_dlq_depth')).toBeNaN();
    expect(await stats(app)).toMatchObject({ queue_size: null, dlq_size: null, sent_total: 0, workers: 0 });
  });
});
