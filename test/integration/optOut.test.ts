import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createChannels, type Channels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import type { Channel } from '../../internal/domain/notification.ts';
import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { claimBatch, type ClaimedNotification } from '../../internal/repository/claims.ts';
import { saveOptOuts } from '../../internal/repository/recipients.ts';
import { CompletionBatcher } from '../../internal/worker/completionBatcher.ts';
import { deliverClaimed } from '../../internal/worker/deliveryAttempt.ts';
import type { RetryPolicy } from '../../internal/worker/retryPolicy.ts';
import { claimOne } from '../support/claims.ts';
import { useDatabasePool, useTestDatabase } from '../support/fileDatabase.ts';
import { useQueueScope } from '../support/queueScope.ts';
import { testQueueKeys } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';
import type { TwilioFailure, TwilioServer } from '../support/twilioServer.ts';
import { useInProcessWorkers } from '../support/inProcessWorkers.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';
import { attemptsOf, insertPending, rowOf, silentLogger } from './helpers.ts';

const LEASE_MS = 10_000;
const quickPolicy: RetryPolicy = { maxRetries: 3, baseMs: 50, maxMs: 100 };

describe('opt-outs and provider-requested waits at delivery', () => {
  const scope = useTestScope('file');
  /** The file's database, with room for the worker's deliveries and completions at once. */
  const pool = useDatabasePool(useTestDatabase(), 10);
  const queues = useQueueScope();
  let receiver: WebhookReceiver;
  let twilio: TwilioServer;
  let channels: Channels;

  beforeAll(async () => {
    receiver = await scope.receiver(() => 200);
    twilio = await scope.twilio();
    const config = parseConfig({
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_TIMEOUT_MS: '3000',
      PROVIDER_TIMEOUT_MS: '3000',
      LEASE_MS: String(LEASE_MS),
      SMS_PROVIDER_URL: twilio.url,
      SMS_ACCOUNT_SID: twilio.accountSid,
      SMS_AUTH_TOKEN: twilio.authToken,
      SMS_FROM: '+15005550006',
      LOG_LEVEL: 'silent',
    });
    channels = createChannels(config);
  });

  function deps(keys: QueueKeys, policy: RetryPolicy = quickPolicy) {
    return { sql: pool.sql, queue: new NotificationQueue(queues.redis, keys), channels, policy, leaseMs: LEASE_MS, completions: new CompletionBatcher(pool.sql) };
  }

  async function claim(id: string, workerId = 'worker-t'): Promise<ClaimedNotification> {
    const row = await claimOne(pool.sql, id, workerId, LEASE_MS);
    expect(row).toBeDefined();
    return row!;
  }

  /**
   * Claims the notification as a worker does, which delivers an IN_APP one to its inbox there and
   * then, and runs one delivery attempt for any other; answers whether the claim found it opted out.
   */
  async function deliverOnce(id: string, keys: QueueKeys, policy: RetryPolicy = quickPolicy): Promise<Pick<ClaimedNotification, 'opted_out'>> {
    const { claimed, inboxed } = await claimBatch(pool.sql, [id], 'worker-t', LEASE_MS, ['IN_APP']);
    const row = claimed[0];
    if (!row) {
      expect(inboxed.map((d) => d.row.id)).toEqual([id]);
      return { opted_out: false };
    }
    await deliverClaimed(deps(keys, policy), row, { id, attempt: row.attempt, workerId: 'worker-t' }, new AbortController().signal, silentLogger(), () => Date.now() + LEASE_MS);
    return row;
  }

  /** A notification for `channel` to a new user, addressed as that channel needs; `marker` is in its body. */
  async function pendingFor(channel: Channel, fields: { userId?: string; critical?: boolean } = {}) {
    const userId = fields.userId ?? `user-${randomUUID()}`;
    const marker = randomUUID();
    const recipient = channel === 'WEBHOOK' ? receiver.url : channel === 'SMS' ? '+14155550123' : null;
    const row = await insertPending(pool.sql, { user_id: userId, type: channel, body: `body ${marker}`, recipient, critical: fields.critical ?? false });
    return { id: row.id, userId, marker };
  }

  /** Requests the providers received for this notification (webhook or SMS). */
  function sentFor(id: string, marker: string): number {
    return receiver.forId(id).length + twilio.requests.filter((r) => (r.form.Body ?? '').includes(marker)).length;
  }

  async function inboxItems(id: string): Promise<number> {
    const [row] = await pool.sql<{ n: number }[]>`select count(*)::int as n from inbox_items where notification_id = ${id}`;
    return row!.n;
  }

  /** The wait the last failed attempt scheduled: available_at minus the moment it was recorded. */
  async function scheduledWaitMs(id: string): Promise<number> {
    const [row] = await pool.sql<{ ms: number }[]>`
      select (extract(epoch from available_at - updated_at) * 1000)::float8 as ms from notifications where id = ${id}`;
    return row!.ms;
  }

  describe('a user who opted out of the channel', () => {
    it('gets an IN_APP notification SKIPPED with the reason and a SKIPPED attempt, and nothing in the inbox or dead letters', async () => {
      const keys = testQueueKeys();
      const { id, userId } = await pendingFor('IN_APP');
      await saveOptOuts(pool.sql, userId, ['IN_APP'], () => {});

      const claimed = await deliverOnce(id, keys);
      expect(claimed.opted_out).toBe(true);
      const reason = `not sent: user ${userId} opted out of IN_APP`;
      const row = await rowOf(pool.sql, id);
      expect(row).toMatchObject({ status: 'SKIPPED', error_reason: reason, retry_count: 0, attempt: 1, locked_by: null, lease_expires_at: null, sent_at: null });
      expect(await attemptsOf(pool.sql, id)).toEqual([{ attempt: 1, outcome: 'SKIPPED', worker_id: 'worker-t', error: reason }]);
      expect(await inboxItems(id)).toBe(0);
      expect(await queues.redis.llen(keys.dlq)).toBe(0);
      // SKIPPED is final: nothing claims it again.
      expect(await claimOne(pool.sql, id, 'worker-2', LEASE_MS)).toBeUndefined();
    });

    it.each<Channel>(['WEBHOOK', 'SMS'])('gets a %s SKIPPED without any request to the provider', async (channel) => {
      const keys = testQueueKeys();
      const { id, userId, marker } = await pendingFor(channel);
      await saveOptOuts(pool.sql, userId, [channel], () => {});
      await deliverOnce(id, keys);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'SKIPPED', error_reason: `not sent: user ${userId} opted out of ${channel}` });
      expect(sentFor(id, marker)).toBe(0);
    });

    it('still gets notifications on the channels it did not opt out of, and other users are not affected', async () => {
      const keys = testQueueKeys();
      const { id: inApp, userId } = await pendingFor('IN_APP');
      await saveOptOuts(pool.sql, userId, ['SMS', 'EMAIL', 'WEBHOOK'], () => {});
      const claimed = await deliverOnce(inApp, keys);
      expect(claimed.opted_out).toBe(false);
      expect((await rowOf(pool.sql, inApp)).status).toBe('SENT');
      expect(await inboxItems(inApp)).toBe(1);

      const neighbour = await pendingFor('SMS');
      await saveOptOuts(pool.sql, `${neighbour.userId}-not-them`, ['SMS'], () => {});
      await deliverOnce(neighbour.id, keys);
      expect((await rowOf(pool.sql, neighbour.id)).status).toBe('SENT');
      expect(sentFor(neighbour.id, neighbour.marker)).toBe(1);
    });

    it.each<Channel>(['IN_APP', 'WEBHOOK', 'SMS'])('still gets a critical %s notification', async (channel) => {
      const keys = testQueueKeys();
      const { id, userId, marker } = await pendingFor(channel, { critical: true });
      await saveOptOuts(pool.sql, userId, ['IN_APP', 'WEBHOOK', 'SMS'], () => {});
      const claimed = await deliverOnce(id, keys);
      expect(claimed.opted_out).toBe(false);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'SENT', error_reason: null });
      expect(await attemptsOf(pool.sql, id)).toEqual([{ attempt: 1, outcome: 'SENT', worker_id: 'worker-t', error: null }]);
      if (channel === 'IN_APP') expect(await inboxItems(id)).toBe(1);
      else expect(sentFor(id, marker)).toBe(1);
    });
  });

  describe('an opt-out is read when the notification is claimed', () => {
    it('skips a notification created before the user opted out', async () => {
      const keys = testQueueKeys();
      const { id, userId, marker } = await pendingFor('WEBHOOK');
      // The notification is stored and queued; the user opts out before a worker gets to it.
      await saveOptOuts(pool.sql, userId, ['WEBHOOK'], () => {});
      await deliverOnce(id, keys);
      expect((await rowOf(pool.sql, id)).status).toBe('SKIPPED');
      expect(sentFor(id, marker)).toBe(0);
    });

    it('delivers a notification created while the user was opted out once they opted back in', async () => {
      const keys = testQueueKeys();
      const userId = `user-${randomUUID()}`;
      await saveOptOuts(pool.sql, userId, ['IN_APP'], () => {});
      const { id } = await pendingFor('IN_APP', { userId });
      await saveOptOuts(pool.sql, userId, [], () => {});
      await deliverOnce(id, keys);
      expect((await rowOf(pool.sql, id)).status).toBe('SENT');
    });

    it('skips the retry of a notification whose user opted out after a failed attempt', async () => {
      const keys = testQueueKeys();
      const { id, userId, marker } = await pendingFor('SMS');
      twilio.failNext({ status: 500 });
      await deliverOnce(id, keys);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'PENDING', retry_count: 1 });

      await saveOptOuts(pool.sql, userId, ['SMS'], () => {});
      await pool.sql`update notifications set available_at = now() where id = ${id}`;
      await deliverOnce(id, keys);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'SKIPPED', retry_count: 1, attempt: 2 });
      expect((await attemptsOf(pool.sql, id)).map((a) => a.outcome)).toEqual(['RETRY', 'SKIPPED']);
      expect(sentFor(id, marker)).toBe(1);
    });

    it('records no skip for a claim another worker has taken over', async () => {
      const keys = testQueueKeys();
      const { id, userId } = await pendingFor('IN_APP');
      await saveOptOuts(pool.sql, userId, ['IN_APP'], () => {});
      const stale = await claim(id, 'worker-old');
      // Its lease ran out and another worker claimed the row: attempt 2 is theirs now.
      await pool.sql`update notifications set attempt = attempt + 1, locked_by = 'worker-new' where id = ${id}`;
      await deliverClaimed(deps(keys), stale, { id, attempt: stale.attempt, workerId: 'worker-old' }, new AbortController().signal, silentLogger(), () => Date.now() + LEASE_MS);
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'PROCESSING', attempt: 2, locked_by: 'worker-new', error_reason: null });
      expect(await attemptsOf(pool.sql, id)).toEqual([]);
    });
  });

  describe('Worker', () => {
    const workers = useInProcessWorkers();

    it('skips the opted-out notifications it pops and delivers the others', async () => {
      const keys = testQueueKeys();
      const userId = `user-${randomUUID()}`;
      await saveOptOuts(pool.sql, userId, ['WEBHOOK'], () => {});
      const skipped = await pendingFor('WEBHOOK', { userId });
      const critical = await pendingFor('WEBHOOK', { userId, critical: true });
      const inApp = await pendingFor('IN_APP', { userId });
      await queues.redis.lpush(keys.queue, skipped.id, critical.id, inApp.id);

      workers.start({ ...deps(keys), concurrency: 4, logger: silentLogger(), workerId: 'in-process' });
      await waitFor('all three finished', async () => {
        const statuses = await Promise.all([skipped.id, critical.id, inApp.id].map(async (id) => (await rowOf(pool.sql, id)).status));
        return statuses.every((s) => s === 'SENT' || s === 'SKIPPED') && statuses;
      });
      expect((await rowOf(pool.sql, skipped.id)).status).toBe('SKIPPED');
      expect((await rowOf(pool.sql, critical.id)).status).toBe('SENT');
      expect((await rowOf(pool.sql, inApp.id)).status).toBe('SENT');
      expect(await attemptsOf(pool.sql, skipped.id)).toEqual([
        { attempt: 1, outcome: 'SKIPPED', worker_id: 'in-process', error: `not sent: user ${userId} opted out of WEBHOOK` },
      ]);
      expect(sentFor(skipped.id, skipped.marker)).toBe(0);
      expect(sentFor(critical.id, critical.marker)).toBe(1);
    });
  });

  describe('a provider asking to retry later (Retry-After)', () => {
    /** Runs one attempt at an SMS the provider fails with `failure`; returns it and the wait scheduled. */
    async function failedOnce(failure: TwilioFailure, policy: RetryPolicy): Promise<{ id: string; waitMs: number }> {
      const { id } = await pendingFor('SMS');
      twilio.failNext(failure);
      await deliverOnce(id, testQueueKeys(), policy);
      return { id, waitMs: await scheduledWaitMs(id) };
    }

    it('waits at least what the provider asked when that is longer than the backoff', async () => {
      const { id, waitMs } = await failedOnce({ status: 429, retryAfter: '60' }, { maxRetries: 3, baseMs: 50, maxMs: 100 });
      const row = await rowOf(pool.sql, id);
      expect(row).toMatchObject({ status: 'PENDING', retry_count: 1, queued_at: null });
      expect(row.error_reason).toContain('429');
      expect(waitMs).toBe(60_000);
      expect((await attemptsOf(pool.sql, id)).map((a) => a.outcome)).toEqual(['RETRY']);
      // Not claimable before then.
      expect(await claimOne(pool.sql, id, 'worker-2', LEASE_MS)).toBeUndefined();
    });

    it('keeps the backoff when it is longer than what the provider asked', async () => {
      const { waitMs } = await failedOnce({ status: 503, retryAfter: '1' }, { maxRetries: 3, baseMs: 10_000, maxMs: 10_000 });
      expect(waitMs).toBeGreaterThanOrEqual(5000);
      expect(waitMs).toBeLessThanOrEqual(10_000);
    });

    it('uses the backoff alone for a retryable failure without Retry-After', async () => {
      const { waitMs } = await failedOnce({ status: 500 }, { maxRetries: 3, baseMs: 50, maxMs: 100 });
      expect(waitMs).toBeGreaterThanOrEqual(25);
      expect(waitMs).toBeLessThanOrEqual(50);
    });

    it('still fails and dead-letters the last attempt, whatever the provider asked', async () => {
      const keys = testQueueKeys();
      const { id } = await pendingFor('SMS');
      await pool.sql`update notifications set retry_count = 2 where id = ${id}`;
      twilio.failNext({ status: 429, retryAfter: '60' });
      await deliverOnce(id, keys, { maxRetries: 3, baseMs: 50, maxMs: 100 });
      expect(await rowOf(pool.sql, id)).toMatchObject({ status: 'FAILED', retry_count: 3 });
      expect(await queues.redis.lrange(keys.dlq, 0, -1)).toEqual([id]);
    });
  });
});
