import type { ChannelProvider, DeliveryChanges, RecipientData } from '../channels/channelProvider.ts';
import { failureChanges } from '../channels/failureChanges.ts';
import { PermanentDeliveryError } from '../channels/permanentDeliveryError.ts';
import { describeNetworkError } from '../channels/transport/networkError.ts';
import { withTimeLimit } from '../channels/transport/timeLimit.ts';
import { untilAborted } from '../channels/transport/untilAborted.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { Sql } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import { deletePushSubscriptions, listPushSubscriptions } from '../repository/pushSubscriptions.ts';

/**
 * One delivery attempt through a channel, with the stored data around it: reads what the channel
 * needs (a PUSH user's subscriptions), delivers, and writes back what the attempt found changed
 * (removes the subscriptions found expired), whether the delivery succeeded or failed. Channels
 * hold no SQL; this is where their stored data is read and written, within the channel's
 * `attemptTimeoutMs` where it has one.
 */
export async function deliverThroughChannel(
  sql: Sql,
  provider: ChannelProvider,
  row: NotificationRow,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  const attempt = (limited: AbortSignal) => deliverWithStoredData(sql, provider, row, limited, logger);
  return provider.attemptTimeoutMs === undefined ? attempt(signal) : withTimeLimit(signal, provider.attemptTimeoutMs, attempt);
}

async function deliverWithStoredData(sql: Sql, provider: ChannelProvider, row: NotificationRow, signal: AbortSignal, logger: Logger): Promise<void> {
  if (!provider.deliver) throw new PermanentDeliveryError(`${row.type} is delivered by its claim, not by a delivery attempt`);
  const recipient = await recipientDataFor(sql, provider, row.user_id, signal);
  let changes: DeliveryChanges | void;
  try {
    changes = await provider.deliver(row, signal, recipient);
  } catch (err) {
    throw await writeBackAfterFailure(sql, row.user_id, err, signal);
  }
  // Delivered: a removal that failed now is tried again when the push service next answers 404/410.
  await writeBack(sql, row.user_id, changes, signal).catch((err: unknown) =>
    logger.warn({ err }, 'delivered, but expired push subscriptions could not be removed'),
  );
}

async function recipientDataFor(sql: Sql, provider: ChannelProvider, userId: string, signal: AbortSignal): Promise<RecipientData> {
  if (provider.profileAddress !== 'push_subscriptions') return {};
  try {
    return { pushSubscriptions: await untilAborted(listPushSubscriptions(sql, userId), signal) };
  } catch (err) {
    throw new Error(`push subscriptions of user ${userId} could not be read: ${describeNetworkError(err)}`, { cause: err });
  }
}

/**
 * The error to record for a failed delivery once its changes are written back. Should the removal
 * fail, a permanent failure ("they were removed") becomes one worth retrying: the next attempt
 * finds the subscriptions still stored, and removes them.
 */
async function writeBackAfterFailure(sql: Sql, userId: string, err: unknown, signal: AbortSignal): Promise<unknown> {
  try {
    await writeBack(sql, userId, failureChanges(err), signal);
    return err;
  } catch (removal) {
    if (!(err instanceof PermanentDeliveryError)) return err;
    return new Error(`${err.message}, but removing the expired push subscriptions failed: ${describeNetworkError(removal)}`, { cause: removal });
  }
}

async function writeBack(sql: Sql, userId: string, changes: DeliveryChanges | void, signal: AbortSignal): Promise<void> {
  const expired = changes?.expiredPushSubscriptions ?? [];
  if (expired.length === 0) return;
  await untilAborted(deletePushSubscriptions(sql, userId, expired.map((s) => s.endpoint)), signal);
}
