import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { runScript, type ServiceProcess } from '../support/serviceProcess.ts';
import { useTestScope, type RunningServices } from '../support/testScope.ts';
import { startScenarioReceiver, type ScenarioAnswer, type WebhookReceiver } from '../support/webhookReceiver.ts';
import { postNotification, statusReached, storedAttempts, storedNotification } from '../support/notifications.ts';

const MAX_RETRIES = 3;
const RETRY_BASE_MS = 400;
const RETRY_MAX_MS = 5000;

/** The shortest wait the backoff allows after the n-th failed attempt: half of min(base * 2^(n-1), max). */
function backoffLowerBoundMs(failedAttempts: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** (failedAttempts - 1), RETRY_MAX_MS) / 2;
}

describe('retries, dead letters and replay through the real processes', () => {
  const scope = useTestScope('file');
  const redis = scope.redis();
  let running: RunningServices;
  let worker: ServiceProcess;
  let receiver: WebhookReceiver;
  let scenarios: Map<string, ScenarioAnswer>;

  beforeAll(async () => {
    ({ receiver, scenarios } = await startScenarioReceiver());
    scope.defer(() => receiver.close());
    running = await scope.services({
      env: {
        MAX_RETRIES: String(MAX_RETRIES),
        RETRY_BASE_MS: String(RETRY_BASE_MS),
        RETRY_MAX_MS: String(RETRY_MAX_MS),
        // Far above any stall of a loaded machine: every attempt counted below is one the receiver answered.
        LEASE_MS: '30000',
      },
    });
    worker = running.worker.process;
  });

  async function postWebhook(scenario: string): Promise<string> {
    const created = await postNotification(running.api.url, {
      user_id: `user-${scenario}`,
      type: 'WEBHOOK',
      body: `scenario ${scenario}`,
      to: receiver.url,
      data: { scenario },
    });
    expect(created.status).toBe('PENDING');
    return created.id;
  }

  async function deadLetterIds(): Promise<string[]> {
    return redis.lrange(running.keys.dlq, 0, -1);
  }

  async function queuedIds(): Promise<string[]> {
    return redis.lrange(running.keys.queue, 0, -1);
  }

  it('attempts a webhook answered 500 MAX_RETRIES times with one webhook-id, spaced by the backoff, then fails it into the dead-letter list', async () => {
    scenarios.set('always-500', () => 500);
    const id = await postWebhook('always-500');

    const failed = await statusReached(running.db.sql, id, 'FAILED');
    expect(failed.retry_count).toBe(MAX_RETRIES);
    expect(failed.error_reason).toMatch(/\b500\b/);

    const hits = receiver.forId(id);
    expect(hits).toHaveLength(MAX_RETRIES);
    expect(new Set(hits.map((h) => h.headers['webhook-id']))).toEqual(new Set([id]));
    for (const hit of hits) expect(hit.json).toMatchObject({ id, type: 'WEBHOOK' });
    for (let n = 1; n < hits.length; n++) {
      const gap = hits[n]!.at - hits[n - 1]!.at;
      expect(gap, `gap between attempt ${n} and ${n + 1}`).toBeGreaterThanOrEqual(backoffLowerBoundMs(n));
    }

    const attempts = await storedAttempts(running.db.sql, id);
    expect(attempts.map((a) => a.outcome)).toEqual(['RETRY', 'RETRY', 'FAILED']);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    for (const attempt of attempts) expect(attempt.error).toMatch(/\b500\b/);

    await expect.poll(deadLetterIds, { timeout: 10_000 }).toContain(id);
    expect(await queuedIds()).not.toContain(id);
    // No attempt beyond the last one, however long one waits past the longest backoff.
    await sleep(backoffLowerBoundMs(MAX_RETRIES) * 2 + 500);
    expect(receiver.forId(id)).toHaveLength(MAX_RETRIES);
  });

  it('lists a dead letter, changes nothing on replay --dry-run, and on replay re-queues it with retry_count 0 until it is SENT and off the list', async () => {
    let receiverAnswer = 500;
    scenarios.set('replayed', () => receiverAnswer);
    const id = await postWebhook('replayed');
    await statusReached(running.db.sql, id, 'FAILED');
    await expect.poll(deadLetterIds, { timeout: 10_000 }).toContain(id);

    const listed = await runScript('dlq', ['list'], running.env);
    expect(listed.code).toBe(0);
    const line = listed.stdout.split('\n').find((l) => l.startsWith(id));
    expect(line, listed.stdout).toBeDefined();
    expect(line).toContain('FAILED');
    expect(line).toContain(`retries=${MAX_RETRIES}`);
    expect(line).toMatch(/\b500\b/);
    const distinctListed = new Set(await deadLetterIds()).size;
    expect(listed.stdout).toContain(`${distinctListed} dead letter(s) in ${running.keys.dlq}`);

    // With no worker running, the replayed row stays as the script left it.
    worker.signal('SIGTERM');
    expect(await worker.exitWithin(15_000)).toEqual({ code: 0, signal: null });

    const dryRun = await runScript('dlq', ['replay', id, '--dry-run'], running.env);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain(`[dry run] replayed ${id}`);
    expect(dryRun.stdout).toContain('[dry run] 1 of 1 replayed');
    const afterDryRun = await storedNotification(running.db.sql, id);
    expect(afterDryRun.status).toBe('FAILED');
    expect(afterDryRun.retry_count).toBe(MAX_RETRIES);
    expect(await deadLetterIds()).toContain(id);
    expect(await queuedIds()).not.toContain(id);

    receiverAnswer = 200;
    const replay = await runScript('dlq', ['replay', id], running.env);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(`replayed ${id}`);
    expect(replay.stdout).toContain('1 of 1 replayed');
    expect(replay.stdout).not.toContain('[dry run]');
    const pending = await storedNotification(running.db.sql, id);
    expect(pending.status).toBe('PENDING');
    expect(pending.retry_count).toBe(0);
    expect(pending.error_reason).toBeNull();
    expect(await queuedIds()).toContain(id);
    expect(await deadLetterIds()).not.toContain(id);

    ({ process: worker } = await scope.worker(running.env));
    const sent = await statusReached(running.db.sql, id, 'SENT');
    expect(sent.retry_count).toBe(0);
    expect(sent.error_reason).toBeNull();
    const hits = receiver.forId(id);
    expect(hits).toHaveLength(MAX_RETRIES + 1);
    expect(new Set(hits.map((h) => h.headers['webhook-id']))).toEqual(new Set([id]));
    expect((await storedAttempts(running.db.sql, id)).map((a) => a.outcome)).toEqual(['RETRY', 'RETRY', 'FAILED', 'SENT']);
    expect(await deadLetterIds()).not.toContain(id);
  });

  it.each([400, 404, 410])('fails a webhook answered %i after one attempt and dead-letters it', async (status) => {
    scenarios.set(`permanent-${status}`, () => status);
    const id = await postWebhook(`permanent-${status}`);

    const failed = await statusReached(running.db.sql, id, 'FAILED');
    expect(failed.retry_count).toBe(1);
    expect(failed.error_reason).toContain(String(status));
    expect((await storedAttempts(running.db.sql, id)).map((a) => a.outcome)).toEqual(['FAILED']);
    await expect.poll(deadLetterIds, { timeout: 10_000 }).toContain(id);
    // Longer than any retry would have waited: still one attempt.
    await sleep(backoffLowerBoundMs(1) * 2 + 500);
    expect(receiver.forId(id)).toHaveLength(1);
    expect((await storedNotification(running.db.sql, id)).status).toBe('FAILED');
  });

  it.each([408, 429])('retries a webhook answered %i and delivers it once the receiver accepts', async (status) => {
    scenarios.set(`transient-${status}`, (hit) => (hit <= 2 ? status : 200));
    const id = await postWebhook(`transient-${status}`);

    const sent = await statusReached(running.db.sql, id, 'SENT');
    expect(sent.retry_count).toBe(2);
    expect(sent.error_reason).toBeNull();
    expect(receiver.forId(id)).toHaveLength(3);
    const attempts = await storedAttempts(running.db.sql, id);
    expect(attempts.map((a) => a.outcome)).toEqual(['RETRY', 'RETRY', 'SENT']);
    expect(attempts[0]!.error).toContain(String(status));
    expect(await deadLetterIds()).not.toContain(id);
  });
});
