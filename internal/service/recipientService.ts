import type { Channels } from '../channels/channelRegistry.ts';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError, ValidationError } from '../domain/errors.ts';
import type { Channel } from '../domain/notification.ts';
import type { PreferencesJson, RecipientProfile, RecipientProfileInput } from '../domain/recipient.ts';
import { listPushSubscriptions } from '../repository/pushSubscriptions.ts';
import { findOptOuts, findRecipient, saveOptOuts, saveRecipient } from '../repository/recipients.ts';

export interface RecipientServiceDeps {
  sql: Sql;
  channels: Channels;
  requestTimeoutMs: number;
}

/** Stores a user's whole profile (fields left out are cleared) and answers it as stored. */
export async function putRecipient(
  deps: RecipientServiceDeps,
  userId: string,
  input: RecipientProfileInput,
): Promise<RecipientProfile> {
  const webhookUrl = input.webhook_url ? checkWebhookUrl(deps.channels, input.webhook_url) : null;
  // One subscription per endpoint; listed twice, the later keys win (a browser re-subscribed).
  const byEndpoint = new Map(input.push_subscriptions.map((s) => [s.endpoint, { endpoint: s.endpoint, p256dh: s.keys.p256dh, auth: s.keys.auth }]));
  const subscriptions = [...byEndpoint.values()];
  await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) =>
    saveRecipient(
      deps.sql,
      userId,
      { email: input.email ?? null, phone: input.phone ?? null, webhook_url: webhookUrl, locale: input.locale ?? null },
      subscriptions,
      beforeCommit,
    ),
  );
  // Stored already: a PUT repeated after a 503 here stores the same profile again.
  return getRecipient(deps, userId);
}

/** The webhook channel's own rules (scheme, private targets) apply to a profile's URL as to a `to`. */
function checkWebhookUrl(channels: Channels, url: string): string | null {
  if (!channels.WEBHOOK) return url;
  try {
    return channels.WEBHOOK.checkAddress(url);
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(err.message.replace(/"to"/g, '"webhook_url"'), err.code, [{ path: 'webhook_url', message: err.message }]);
    throw err;
  }
}

export async function getRecipient(deps: Pick<RecipientServiceDeps, 'sql' | 'requestTimeoutMs'>, userId: string): Promise<RecipientProfile> {
  return runWithDeadline(deps.requestTimeoutMs, async () => {
    const [row, subscriptions, optedOut] = await Promise.all([
      findRecipient(deps.sql, userId),
      listPushSubscriptions(deps.sql, userId),
      findOptOuts(deps.sql, userId),
    ]);
    if (!row && subscriptions.length === 0 && optedOut.length === 0) {
      throw new NotFoundError(`user ${userId} has no profile: create one with PUT /users/${encodeURIComponent(userId)}`);
    }
    return {
      user_id: userId,
      email: row?.email ?? null,
      phone: row?.phone ?? null,
      webhook_url: row?.webhook_url ?? null,
      locale: row?.locale ?? null,
      push_subscriptions: subscriptions.map((s) => ({ endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } })),
      opted_out: optedOut,
      created_at: row?.created_at.toISOString() ?? null,
      updated_at: row?.updated_at.toISOString() ?? null,
    };
  });
}

/** Replaces the channels a user opted out of; answers the set as stored. */
export async function putPreferences(
  deps: Pick<RecipientServiceDeps, 'sql' | 'requestTimeoutMs'>,
  userId: string,
  optedOut: Channel[],
): Promise<PreferencesJson> {
  await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) => saveOptOuts(deps.sql, userId, [...new Set(optedOut)], beforeCommit));
  return { user_id: userId, opted_out: await runWithDeadline(deps.requestTimeoutMs, () => findOptOuts(deps.sql, userId)) };
}

export async function getPreferences(
  deps: Pick<RecipientServiceDeps, 'sql' | 'requestTimeoutMs'>,
  userId: string,
): Promise<PreferencesJson> {
  return { user_id: userId, opted_out: await runWithDeadline(deps.requestTimeoutMs, () => findOptOuts(deps.sql, userId)) };
}
