import type { Sql } from '../database.ts';

/** Adds users to a topic; a user already subscribed keeps their original subscription time. */
export async function addTopicSubscribers(sql: Sql, topic: string, userIds: string[]): Promise<number> {
  const rows = await sql`
    insert into topic_subscriptions (topic, user_id)
    select ${topic}, unnest(${userIds}::text[])
    on conflict do nothing
    returning user_id`;
  return rows.length;
}

export async function removeTopicSubscribers(sql: Sql, topic: string, userIds: string[]): Promise<number> {
  const rows = await sql`
    delete from topic_subscriptions where topic = ${topic} and user_id = any(${userIds}::text[])
    returning user_id`;
  return rows.length;
}

export async function countTopicSubscribers(sql: Sql, topic: string): Promise<number> {
  const [row] = await sql<{ count: number }[]>`
    select count(*)::int as count from topic_subscriptions where topic = ${topic}`;
  return row!.count;
}
