import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { REPEATED_SIGNAL_WINDOW_MS } from '../../internal/platform/processLifecycle.ts';
import { isProcessAlive, ServiceProcess } from '../support/serviceProcess.ts';
import { serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { useTestScope, type RunningApi } from '../support/testScope.ts';
import { startScenarioReceiver, type ScenarioAnswer, type WebhookReceiver } from '../support/webhookReceiver.ts';
import { postNotification, statusReached, storedAttempts, storedNotification } from '../support/notifications.ts';
import { waitFor } from '../support/waitFor.ts';

/** Webhook time limit well above the receiver's slow answers below, so those attempts succeed. */
const PATIENT_WEBHOOKS = { WEBHOOK_TIMEOUT_MS: '10000', LEASE_MS: '12000' };

/** A lease far above any stall of a loaded machine, for a worker whose attempts are counted exactly. */
const LONG_LEASE = { LEASE_MS: '30000' };

/** Slack for process start-up, PostgreSQL round trips and a busy machine on top of a deadline under test. */
const EXIT_SLACK_MS = 8000;

describe('graceful shutdown of the real processes', () => {
  /** What every test shares: the database, queue keys, receiver and an API. */
  const shared = useTestScope('file');
  /** What one test starts; whatever is still running after it is stopped, and killed if it will not stop. */
  const scope = useTestScope();
  const started: ServiceProcess[] = [];
  let db: TestDatabase;
  let keys: QueueKeys;
  let redis: Redis;
  let api: RunningApi;
  let receiver: WebhookReceiver;
  let scenarios: Map<string, ScenarioAnswer>;

  beforeAll(async () => {
    db = await shared.database();
    keys = testQueueKeys();
    redis = shared.redis();
    ({ receiver, scenarios } = await startScenarioReceiver());
    shared.defer(() => receiver.close());
    api = await shared.api(serviceEnv(db, keys));
  });

  // Runs before the scope closes (after-hooks run last-registered first): stopped rather than
  // killed, so a claim a test left behind is handed back for the next test.
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.stopWithin(15_000)));
  });

  async function worker(overrides: Record<string, string>): Promise<ServiceProcess> {
    const { process: w } = await scope.worker(serviceEnv(db, keys, overrides));
    started.push(w);
    return w;
  }

  async function workerId(w: ServiceProcess): Promise<string> {
    return String((await w.waitForLog('worker started')).workerId);
  }

  async function postWebhook(scenario: string): Promise<string> {
    const created = await postNotification(api.url, { user_id: `user-${scenario}`, type: 'WEBHOOK', body: scenario, to: receiver.url, data: { scenario } });
    return created.id;
  }

  it('lets a delivery that outlasts the signal but not the grace period finish: SENT, exit code 0', async () => {
    const graceMs = 8000;
    scenarios.set('slow-within-grace', () => ({ status: 200, delayMs: 1500 }));
    const w = await worker({ ...PATIENT_WEBHOOKS, SHUTDOWN_GRACE_MS: String(graceMs) });
    const id = await postWebhook('slow-within-grace');
    await waitFor('the slow delivery to reach the receiver', () => receiver.forId(id).length === 1);

    w.signal('SIGTERM');
    const exit = await w.exitWithin(graceMs + EXIT_SLACK_MS);
    expect(exit).toEqual({ code: 0, signal: null });

    const row = await storedNotification(db.sql, id);
    expect(row.status).toBe('SENT');
    expect(row.retry_count).toBe(0);
    const attempts = await storedAttempts(db.sql, id);
    expect(attempts.map((a) => a.outcome)).toEqual(['SENT']);
    expect(attempts[0]!.worker_id).toBe(await workerId(w));
    expect(receiver.forId(id)).toHaveLength(1);
    expect((await w.waitForLog('worker stopped')).released).toBe(0);
  });

  it.each([1, 4])(
    'with WORKER_CONCURRENCY=%i, hands back a delivery still hanging when the grace period ends, exits 0, and another worker delivers it',
    async (concurrency) => {
      const graceMs = 1500;
      const hangingEnv = {
        SHUTDOWN_GRACE_MS: String(graceMs),
        WORKER_CONCURRENCY: String(concurrency),
        // Far longer than the grace, so the delivery is still hanging when the worker hands it back;
        // short enough that a queue entry lost on the way is queued again well within the wait below.
        WEBHOOK_TIMEOUT_MS: '8000',
        LEASE_MS: '9000',
      };
      const scenario = `hang-past-grace-${concurrency}`;
      scenarios.set(scenario, (hit) => (hit === 1 ? 'hang' : 200));
      const first = await worker(hangingEnv);
      const id = await postWebhook(scenario);
      await waitFor('the hanging delivery to reach the receiver', () => receiver.forId(id).length === 1);
      expect((await storedNotification(db.sql, id)).status).toBe('PROCESSING');

      first.signal('SIGTERM');
      const exit = await first.exitWithin(graceMs + EXIT_SLACK_MS);
      expect(exit).toEqual({ code: 0, signal: null });
      expect((await first.waitForLog('worker stopped')).released).toBe(1);
      // The aborted delivery says it was handed back, at info level, and does not warn of a takeover.
      await first.closed;
      const endOfAttempt = first.logs.filter((l) => l.notificationId === id && /handed|taken over|attempt failed/.test(String(l.msg)));
      expect(endOfAttempt.map((l) => ({ level: l.level, msg: l.msg }))).toEqual([
        { level: 30, msg: 'delivery stopped: this worker is stopping and handed the notification back for another worker' },
      ]);

      const handedBack = await storedNotification(db.sql, id);
      expect(handedBack.status).toBe('PENDING');
      expect(handedBack.retry_count).toBe(0);
      expect(handedBack.locked_by).toBeNull();
      const released = await storedAttempts(db.sql, id);
      expect(released.map((a) => a.outcome)).toEqual(['RELEASED']);
      expect(released[0]!.worker_id).toBe(await workerId(first));

      const second = await worker(hangingEnv);
      const sent = await statusReached(db.sql, id, 'SENT');
      expect(sent.retry_count).toBe(0);
      const hits = receiver.forId(id);
      expect(hits).toHaveLength(2);
      expect(new Set(hits.map((h) => h.headers['webhook-id']))).toEqual(new Set([id]));
      const attempts = await storedAttempts(db.sql, id);
      expect(attempts.map((a) => a.outcome)).toEqual(['RELEASED', 'SENT']);
      expect(attempts[1]!.worker_id).toBe(await workerId(second));
    },
  );

  it('takes a stop signal repeated within the window as the same stop, and exits 1 at once on one after it', async () => {
    // Only the first delivery hangs: whichever worker takes the claim up after its lease is answered.
    scenarios.set('hangs-through-forced-exit', (hit) => (hit === 1 ? 'hang' : 200));
    const w = await worker({ ...LONG_LEASE, WEBHOOK_TIMEOUT_MS: '20000', SHUTDOWN_GRACE_MS: '30000' });
    const id = await postWebhook('hangs-through-forced-exit');
    await waitFor('the hanging delivery to reach the receiver', () => receiver.forId(id).length === 1);

    w.signal('SIGTERM');
    await w.waitForLog(/^worker stopping/);
    // As npm relays a Ctrl-C the terminal delivered too: nothing changes.
    w.signal('SIGINT');
    await w.waitForLog(/^already stopping/);
    expect(w.running).toBe(true);

    await sleep(REPEATED_SIGNAL_WINDOW_MS);
    w.signal('SIGINT');
    expect(await w.exitWithin(EXIT_SLACK_MS)).toEqual({ code: 1, signal: null });
    await w.closed;
    expect(w.logs.some((l) => l.msg === 'stop signal repeated: exiting at once, without finishing')).toBe(true);
    expect(w.logs.some((l) => l.msg === 'worker stopped')).toBe(false);
    // Not handed back: the claim waits for its lease, as after a crash.
    expect((await storedNotification(db.sql, id)).status).toBe('PROCESSING');
  });

  it('takes no new work once it has logged that it is stopping; the notification waits on the queue for another worker', async () => {
    scenarios.set('keeps-stopping-worker-busy', () => ({ status: 200, delayMs: 3000 }));
    const stopping = await worker({ ...PATIENT_WEBHOOKS, SHUTDOWN_GRACE_MS: '10000' });
    const busyId = await postWebhook('keeps-stopping-worker-busy');
    await waitFor('the slow delivery to reach the receiver', () => receiver.forId(busyId).length === 1);

    stopping.signal('SIGTERM');
    await stopping.waitForLog(/^worker stopping/);
    const lateId = await postWebhook('posted-after-stopping');
    expect(await stopping.exitWithin(10_000 + EXIT_SLACK_MS)).toEqual({ code: 0, signal: null });

    expect((await storedNotification(db.sql, busyId)).status).toBe('SENT');
    const late = await storedNotification(db.sql, lateId);
    expect(late.status).toBe('PENDING');
    expect(late.attempt).toBe(0);
    expect(late.locked_by).toBeNull();
    expect(await storedAttempts(db.sql, lateId)).toEqual([]);
    expect(receiver.forId(lateId)).toHaveLength(0);
    expect(await redis.lrange(keys.queue, 0, -1)).toContain(lateId);

    const next = await worker(LONG_LEASE);
    await statusReached(db.sql, lateId, 'SENT');
    expect(receiver.forId(lateId)).toHaveLength(1);
    expect((await storedAttempts(db.sql, lateId))[0]!.worker_id).toBe(await workerId(next));
  });

  it('completes a request in flight when the API gets SIGTERM, refuses new connections meanwhile, and exits 0', async () => {
    const draining = await scope.api(serviceEnv(db, keys));
    started.push(draining.process);
    const body = JSON.stringify({ user_id: 'in-flight-user', type: 'IN_APP', title: 'in flight', body: 'sent across a shutdown' });
    const cut = Math.floor(body.length / 2);

    const request = http.request(`${draining.url}/notifications`, {
      method: 'POST',
      agent: new http.Agent({ keepAlive: true }),
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const response = new Promise<{ status: number; connection: string | undefined; text: string }>((resolve, reject) => {
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      request.on('error', reject);
    });
    // Awaited below; this only keeps a failure earlier in the test from also reporting it as unhandled.
    response.catch(() => {});
    // The server answers "100 Continue" once it has the request's headers: the request is under way.
    await new Promise<void>((resolve) => request.once('continue', () => resolve()));
    request.write(body.slice(0, cut));

    draining.process.signal('SIGTERM');
    await draining.process.waitForLog(/^api stopping/);
    // A connection the kernel accepted just before the listening socket closed is reset; once it is
    // closed, connections are refused. None is answered.
    const outcomes: string[] = [];
    await waitFor('new connections to be refused', async () => {
      const outcome = await fetch(`${draining.url}/healthz`).then(
        (res) => `answered ${res.status}`,
        (err: unknown) => String((err as { cause?: { code?: string } }).cause?.code),
      );
      outcomes.push(outcome);
      return outcome === 'ECONNREFUSED';
    });
    for (const outcome of outcomes) expect(outcome).toMatch(/^(ECONNREFUSED|ECONNRESET)$/);
    expect(draining.process.running).toBe(true);

    request.end(body.slice(cut));
    const answer = await response;
    expect(answer.status).toBe(201);
    // A kept-alive client is told not to reuse the connection of a process that is going away.
    expect(answer.connection).toBe('close');
    const created = JSON.parse(answer.text) as { id: string; status: string };
    expect(created.status).toBe('PENDING');
    expect((await storedNotification(db.sql, created.id)).id).toBe(created.id);

    expect(await draining.process.exitWithin(EXIT_SLACK_MS + 10_000)).toEqual({ code: 0, signal: null });
    await expect(fetch(`${draining.url}/healthz`)).rejects.toThrow();
  });

  /** `npm run worker` processes (npm leading a process group); SIGKILLed with their group after each test. */
  const npmRuns: ServiceProcess[] = [];
  afterEach(() => {
    for (const p of npmRuns.splice(0)) {
      try {
        if (p.child.pid !== undefined) process.kill(-p.child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
  });

  /** The two ways README's operator stops `npm run worker`, each applied to a worker of its own. */
  const npmStops = [
    { how: 'Ctrl-C (SIGINT to its process group)', stop: (npm: ServiceProcess) => npm.signalGroup('SIGINT') },
    { how: 'SIGTERM to npm', stop: (npm: ServiceProcess) => npm.signal('SIGTERM') },
  ];
  const ROUNDS = 5;

  it(`stops npm run worker with exit code 0 every time (${ROUNDS} rounds of each way), with claims in flight: none left PROCESSING, no attempt failed, nothing dead-lettered`, async () => {
    // Each stop finds deliveries under way: hanging past a short grace period (handed back), or
    // slow but well within a long one (finished). The answer is decided as each request arrives.
    let answer: ScenarioAnswer = () => 'hang';
    scenarios.set('in-flight-at-stop', (hit) => answer(hit));
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await postWebhook('in-flight-at-stop'));
    const ours = db.sql`notification_id = any(${ids}::uuid[])`;

    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const handsBack = round % 2 === 1;
        answer = handsBack ? () => 'hang' : () => ({ status: 200, delayMs: 500 });
        const graceMs = handsBack ? 300 : 10_000;
        const env = serviceEnv(db, keys, { ...LONG_LEASE, WEBHOOK_TIMEOUT_MS: '20000', WORKER_CONCURRENCY: '3', SHUTDOWN_GRACE_MS: String(graceMs) });
        // The two ways side by side, each on a worker of its own, started and stopped together.
        const runs = npmStops.map(({ how, stop }) => {
          const npm = ServiceProcess.npmRun('worker', env, { ownProcessGroup: true });
          npmRuns.push(npm);
          return { npm, stop, label: `round ${round}, ${how}, ${handsBack ? 'handing back' : 'finishing'}` };
        });
        await Promise.all(runs.map(({ npm, stop, label }) => stopsGracefully(npm, stop, label, graceMs, handsBack)));

        const after = `after round ${round}`;
        const statuses = await db.sql<{ status: string; retried: number }[]>`
          select status, count(*) filter (where retry_count > 0)::int as retried from notifications where id = any(${ids}::uuid[]) group by status`;
        expect(statuses.filter((s) => !['PENDING', 'SENT'].includes(s.status) || s.retried > 0), after).toEqual([]);
        const outcomes = await db.sql<{ outcome: string }[]>`select distinct outcome from notification_attempts where ${ours}`;
        expect(outcomes.map((o) => o.outcome).filter((o) => o !== 'SENT' && o !== 'RELEASED'), after).toEqual([]);
        expect(await redis.llen(keys.dlq), after).toBe(0);
      }
      const [totals] = await db.sql<{ handedBack: number; sent: number }[]>`
        select count(*) filter (where outcome = 'RELEASED')::int as "handedBack", count(*) filter (where outcome = 'SENT')::int as sent
        from notification_attempts where ${ours}`;
      expect(totals!.handedBack).toBeGreaterThan(0);
      expect(totals!.sent).toBeGreaterThan(0);
    } finally {
      // What is left is delivered at once by whichever worker comes next.
      answer = () => 200;
    }
  }, 120_000);

  /** Waits until `npm run worker` holds a claim, stops it with `stop`, and checks it stopped gracefully. */
  async function stopsGracefully(npm: ServiceProcess, stop: (npm: ServiceProcess) => void, label: string, graceMs: number, handsBack: boolean): Promise<void> {
    const workerId = String((await npm.waitForLog('worker started', 40_000)).workerId);
    await waitFor(`${label}: a claim of the worker's under way`, async () => {
      const [held] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications where status = 'PROCESSING' and locked_by = ${workerId}`;
      return held!.n > 0;
    });
    stop(npm);
    expect(await npm.exitWithin(graceMs + EXIT_SLACK_MS), label).toEqual({ code: 0, signal: null });
    await npm.closed;
    const stopped = npm.logs.find((l) => l.msg === 'worker stopped');
    expect(stopped, label).toBeDefined();
    if (handsBack) expect(stopped!.released, label).toBeGreaterThan(0);
    else expect(stopped!.released, label).toBe(0);
    expect(isProcessAlive(Number(workerId.split(':').at(-2))), `${label}: the worker process outlived npm`).toBe(false);
    expect(npm.logs.filter((l) => /attempt failed|taken over/.test(String(l.msg))), label).toEqual([]);
  }
});
