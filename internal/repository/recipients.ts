import type { Sql } from '../platform/database.ts';
import type { Channel } from '../domain/notification.ts';
import type { ProfileAddress, PushSubscription } from '../domain/recipient.ts';

export interface RecipientRow {
  user_id: string;
  email: string | null;
  phone: string | null;
  webhook_url: string | null;
  locale: string | null;
  created_at: Date;
  updated_at: Date;
}

export type RecipientFields = Pick<RecipientRow, 'email' | 'phone' | 'webhook_url' | 'locale'>;

/**
 * Stores a user's profile and replaces its push subscriptions with `subscriptions`, in one
 * transaction (a subscription kept from before keeps its creation time). `beforeCommit` runs last
 * inside it, so a caller that stopped waiting rolls it back.
 */
export async function saveRecipient(
  sql: Sql,
  userId: string,
  fields: RecipientFields,
  subscriptions: PushSubscription[],
  beforeCommit: () => void,
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`
      insert into recipients (user_id, email, phone, webhook_url, locale)
      values (${userId}, ${fields.email}, ${fields.phone}, ${fields.webhook_url}, ${fields.locale})
      on conflict (user_id) do update
      set email = excluded.email, phone = excluded.phone, webhook_url = excluded.webhook_url,
          locale = excluded.locale, updated_at = now()`;
    const endpoints = subscriptions.map((s) => s.endpoint);
    await tx`delete from push_subscriptions where user_id = ${userId} and not (endpoint = any(${endpoints}::text[]))`;
    if (subscriptions.length > 0) {
      await tx`
        insert into push_subscriptions (user_id, endpoint, p256dh, auth)
        select ${userId}, x.endpoint, x.p256dh, x.auth
        from jsonb_to_recordset(${tx.json(subscriptions as never)}) as x(endpoint text, p256dh text, auth text)
        on conflict (user_id, endpoint) do update set p256dh = excluded.p256dh, auth = excluded.auth`;
    }
    beforeCommit();
  });
}

export async function findRecipient(sql: Sql, userId: string): Promise<RecipientRow | undefined> {
  const [row] = await sql<RecipientRow[]>`select * from recipients where user_id = ${userId}`;
  return row;
}

/** Replaces the channels a user opted out of. `beforeCommit` runs last inside the transaction. */
export async function saveOptOuts(sql: Sql, userId: string, channels: Channel[], beforeCommit: () => void): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from channel_opt_outs where user_id = ${userId} and not (channel = any(${channels}::text[]))`;
    await tx`
      insert into channel_opt_outs (user_id, channel)
      select ${userId}, unnest(${channels}::text[])
      on conflict do nothing`;
    beforeCommit();
  });
}

export async function findOptOuts(sql: Sql, userId: string): Promise<Channel[]> {
  const rows = await sql<{ channel: Channel }[]>`
    select channel from channel_opt_outs where user_id = ${userId} order by channel`;
  return rows.map((r) => r.channel);
}

/**
 * The address each of `userIds` has on file for a channel. Users without one are missing from the
 * map. For `push_subscriptions` the value is null: having a subscription is what counts, and the
 * worker reads them when it delivers.
 */
export async function findAddresses(
  sql: Sql,
  field: ProfileAddress,
  userIds: string[],
): Promise<Map<string, string | null>> {
  if (field === 'push_subscriptions') {
    const rows = await sql<{ user_id: string }[]>`
      select distinct user_id from push_subscriptions where user_id = any(${userIds}::text[])`;
    return new Map(rows.map((r) => [r.user_id, null]));
  }
  const rows = await sql<{ user_id: string; address: string }[]>`
    select user_id, ${sql(field)} as address from recipients
    where user_id = any(${userIds}::text[]) and ${sql(field)} is not null`;
  return new Map(rows.map((r) => [r.user_id, r.address]));
}
