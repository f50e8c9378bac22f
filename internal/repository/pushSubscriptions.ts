import type { Sql } from '../platform/database.ts';
import type { PushSubscription } from '../domain/recipient.ts';


export async function listPushSubscriptions(sql: Sql, userId: string): Promise<PushSubscription[]> {
  return sql<PushSubscription[]>`
    select endpoint, p256dh, auth from push_subscriptions
    where user_id = ${userId}
    order by created_at, endpoint`;
}

/** Forgets a subscription its push service says is gone (404/410). */
export async function deletePushSubscription(sql: Sql, userId: string, endpoint: string): Promise<void> {
  await sql`delete from push_subscriptions where user_id = ${userId} and endpoint = ${endpoint}`;
}
