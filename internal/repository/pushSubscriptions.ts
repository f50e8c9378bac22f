import type { Sql } from '../platform/database.ts';
import type { PushSubscription } from '../domain/recipient.ts';


export async function listPushSubscriptions(sql: Sql, userId: string): Promise<PushSubscription[]> {
  return sql<PushSubscription[]>`
    select endpoint, p256dh, auth from push_subscriptions
    where user_id = ${userId}
    order by created_at, endpoint`;
}

/** Forgets subscriptions their push service says are gone (404/410). */
export async function deletePushSubscriptions(sql: Sql, userId: string, endpoints: string[]): Promise<void> {
  if (endpoints.length === 0) return;
  await sql`delete from push_subscriptions where user_id = ${userId} and endpoint = any(${endpoints}::text[])`;
}
