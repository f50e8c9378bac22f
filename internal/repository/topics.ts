import type { Sql } from '../platform/database.ts';

/**
 * Adds users to a topic; a user already subscribed keeps their original subscription time.
 * `beforeCommit` runs last inside the transaction, so a caller that stopped waiting rolls it back.
 */
export async function addTopicSubscribers(sql: Sql, topic: string, userIds: string[], beforeCommit: () => void): Promise<number> {
  return sql.begin(async (tx) => {
    const rows = await tx`
      insert into topic_subscriptions (topic, user_id)
      select ${topic}, unnest(${userIds}::text[])
      on conflict do nothing
      returning user_id`;
    beforeCommit();
    return rows.length;
  });
}

export async function removeTopicSubscribers(sql: Sql, topic: string, userIds: string[], beforeCommit: () => void): Promise<number> {
  return sql.begin(async (tx) => {
    const rows = await tx`
      delete from topic_subscriptions where topic = ${topic} and user_id = any(${userIds}::text[])
      returning user_id`;
    beforeCommit();
    return rows.length;
  });
}

export async function countTopicSubscribers(sql: Sql, topic: string): Promise<number> {
  const [row] = await sql<{ count: number }[]>`
    select count(*)::int as count from topic_subscriptions where topic = ${topic}`;
  return row!.count;
}
