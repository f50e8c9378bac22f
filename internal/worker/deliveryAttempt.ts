import { setTimeout as sleep } from 'node:timers/promises';
import type { Channels } from '../channels/channelRegistry.ts';
import { PermanentDeliveryError } from '../channels/permanentDeliveryError.ts';
import { RetryLaterError } from '../channels/retryLaterError.ts';
import type { Sql } from '../platform/database.ts';
import { sendToDeadLetters } from '../service/deadLetters.ts';
import type { Logger } from '../platform/logger.ts';
import type { WorkerMetrics } from '../metrics/workerMetrics.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import type { Claim, ClaimedNotification } from '../repository/claims.ts';
import { markSkipped, recordFailure } from '../repository/completions.ts';
import { deliverThroughChannel } from './channelDelivery.ts';
import { ClaimHandedBack } from './claimHandedBack.ts';
import type { CompletionBatcher } from './completionBatcher.ts';
import { nextRetryDelayMs, type RetryPolicy } from './retryPolicy.ts';

export interface AttemptDeps {
  sql: Sql;
  queue: NotificationQueue;
  channels: Channels;
  policy: RetryPolicy;
  leaseMs: number;
  /** Records SENT outcomes in batches shared by the worker's deliveries. */
  completions: Pick<CompletionBatcher, 'complete'>;
  /** Counts the outcomes this worker recorded; absent, nothing is counted. */
  metrics?: Pick<WorkerMetrics, 'attemptRecorded'>;
}

/** How long to keep retrying the final UPDATE of an attempt while PostgreSQL does not answer. */
const COMPLETION_RETRY_DELAYS_MS = [100, 250, 500, 1000, 2000];

/**
 * Delivers one claimed notification and records the outcome, fenced by the claim: if the lease ran
 * out and another worker took over, this attempt's outcome is dropped rather than overwriting the
 * newer one. `leaseUntil` tells when the claim's lease runs out as this worker knows it (renewals
 * move it on): an outcome PostgreSQL did not take is tried again until then. Never throws; failures
 * are recorded on the row or logged.
 */
export async function deliverClaimed(
  deps: AttemptDeps,
  row: ClaimedNotification,
  claim: Claim,
  signal: AbortSignal,
  logger: Logger,
  leaseUntil: () => number,
): Promise<void> {
  const startedAt = Date.now();
  if (row.opted_out) {
    const recorded = await recordSkipped(deps, claim, `not sent: user ${row.user_id} opted out of ${row.type}`, logger, leaseUntil);
    if (recorded) deps.metrics?.attemptRecorded(row, 'SKIPPED', startedAt);
    return;
  }
  try {
    const provider = deps.channels[row.type];
    if (!provider) throw new PermanentDeliveryError(`no ${row.type} provider is configured on this worker`);
    await deliverThroughChannel(deps.sql, provider, row, signal, logger);
  } catch (err) {
    await recordFailedAttempt(deps, row, claim, err, logger, leaseUntil, startedAt, signal);
    return;
  }
  try {
    const recorded = await persist(() => deps.completions.complete(claim), leaseUntil);
    if (recorded) {
      deps.metrics?.attemptRecorded(row, 'SENT', startedAt);
      logger.info({ ms: Date.now() - startedAt }, 'notification sent');
    } else if (signal.reason instanceof ClaimHandedBack) {
      logger.warn('delivered just after this stopping worker handed the claim back; the next attempt sends it again');
    } else logger.warn('delivered, but the claim had been taken over; the newer attempt decides the outcome');
  } catch (err) {
    logger.error({ err }, 'delivered, but could not record it; the lease will expire and maintenance takes over');
  }
}

/** True when the skip was recorded (the claim still held). */
async function recordSkipped(deps: AttemptDeps, claim: Claim, reason: string, logger: Logger, leaseUntil: () => number): Promise<boolean> {
  try {
    const recorded = await persist(() => markSkipped(deps.sql, claim, reason), leaseUntil);
    if (recorded) logger.info({ reason }, 'notification skipped');
    return recorded;
  } catch (err) {
    logger.error({ err }, 'could not record a skip; the lease will expire and maintenance takes over');
    return false;
  }
}

async function recordFailedAttempt(
  deps: AttemptDeps,
  row: NotificationRow,
  claim: Claim,
  err: unknown,
  logger: Logger,
  leaseUntil: () => number,
  startedAt: number,
  signal: AbortSignal,
): Promise<void> {
  const permanent = err instanceof PermanentDeliveryError;
  const reason = err instanceof Error ? err.message : String(err);
  let status: 'PENDING' | 'FAILED' | undefined;
  try {
    status = await persist(
      () =>
        recordFailure(deps.sql, claim, {
          reason,
          permanent,
          maxRetries: deps.policy.maxRetries,
          retryDelayMs: retryDelayAfter(err, deps.policy, row.retry_count),
        }),
      leaseUntil,
    );
  } catch (e) {
    logger.error({ err: e, reason }, 'attempt failed and could not be recorded; the lease will expire and maintenance takes over');
    return;
  }
  if (status) deps.metrics?.attemptRecorded(row, status === 'FAILED' ? 'FAILED' : 'RETRY', startedAt);
  if (status === 'FAILED') {
    logger.warn({ reason, permanent }, 'notification failed; sent to the dead-letter list');
    await sendToDeadLetters(deps.sql, deps.queue, [row.id]).catch((e: unknown) =>
      logger.warn({ err: e }, 'dead-letter push failed; maintenance will push it'),
    );
  } else if (status === 'PENDING') {
    logger.info({ reason, retryCount: row.retry_count + 1 }, 'attempt failed; retry scheduled');
  } else if (signal.reason instanceof ClaimHandedBack) {
    logger.info('delivery stopped: this worker is stopping and handed the notification back for another worker');
  } else {
    logger.warn({ reason }, 'attempt failed, but the claim had been taken over');
  }
}

/** The backoff's delay, or longer when the provider asked for more (Retry-After). */
function retryDelayAfter(err: unknown, policy: RetryPolicy, previousFailures: number): number {
  const backoff = nextRetryDelayMs(policy, previousFailures);
  return err instanceof RetryLaterError ? Math.max(backoff, err.retryAfterMs) : backoff;
}

/**
 * Runs an attempt's final UPDATE, retrying while PostgreSQL does not answer, but only while the
 * lease still holds: after that maintenance owns the row. Throws the last error when it gives up.
 */
async function persist<T>(update: () => Promise<T>, leaseUntil: () => number): Promise<T> {
  for (const delay of COMPLETION_RETRY_DELAYS_MS) {
    try {
      return await update();
    } catch (err) {
      if (Date.now() + delay > leaseUntil()) throw err;
      await sleep(delay);
    }
  }
  return update();
}
