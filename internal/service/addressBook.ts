import type { ChannelProvider } from '../channels/channelProvider.ts';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { ValidationError } from '../domain/errors.ts';
import { findAddresses } from '../repository/recipients.ts';

/** Users named in a `no_address` refusal at most; the count says how many more. */
const MAX_USERS_NAMED = 20;

/**
 * The address each user's notification goes to: the request's `to` when given (one user only),
 * else the user's profile. Refuses the request (400 `no_address`) when a user has none for the
 * channel, so a notification that could never be delivered is not accepted; and any address the
 * channel cannot use.
 */
export async function resolveAddresses(
  deps: { sql: Sql; requestTimeoutMs: number },
  provider: ChannelProvider,
  userIds: string[],
  to?: string,
): Promise<Map<string, string | null>> {
  const field = provider.profileAddress;
  if (to !== undefined || !field) {
    const address = provider.checkAddress(to);
    return new Map(userIds.map((id) => [id, address]));
  }
  const found = await runWithDeadline(deps.requestTimeoutMs, () => findAddresses(deps.sql, field, userIds));
  const missing = userIds.filter((id) => !found.has(id));
  if (missing.length > 0) {
    const named = missing.slice(0, MAX_USERS_NAMED).join(', ');
    const more = missing.length > MAX_USERS_NAMED ? ` and ${missing.length - MAX_USERS_NAMED} more` : '';
    const fix = field === 'push_subscriptions' ? 'add a push subscription' : `set "${field}"`;
    throw new ValidationError(
      `no ${provider.channel} address for user ${named}${more}: ${fix} with PUT /users/:id${userIds.length === 1 ? ' or give "to"' : ''}`,
      'no_address',
      { user_ids: missing.slice(0, MAX_USERS_NAMED), missing: missing.length },
    );
  }
  if (field === 'push_subscriptions') return new Map(userIds.map((id) => [id, null]));
  return new Map(userIds.map((id) => [id, checkProfileAddress(provider, field, id, found.get(id) ?? undefined)]));
}

/** The channel's check of an address on file, its refusal naming the profile rather than "to". */
function checkProfileAddress(provider: ChannelProvider, field: string, userId: string, address: string | undefined): string | null {
  try {
    return provider.checkAddress(address);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw new ValidationError(`the ${field} on file for user ${userId} cannot be used for ${provider.channel}: ${err.message}`, 'no_address', {
      user_ids: [userId],
      missing: 1,
    });
  }
}
