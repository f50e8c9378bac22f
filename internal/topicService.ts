import type { Sql } from './database.ts';
import { runWithDeadline } from './deadline.ts';
import { addTopicSubscribers, countTopicSubscribers, removeTopicSubscribers } from './repository/topics.ts';

type Deps = { sql: Sql; requestTimeoutMs: number };

export interface TopicSummary {
  topic: string;
  subscribers: number;
}

/** Adds or removes a topic's subscribers; answers how many changed and how many there are now. */
export async function changeTopicSubscribers(
  deps: Deps,
  topic: string,
  userIds: string[],
  change: 'add' | 'remove',
): Promise<TopicSummary & { changed: number }> {
  return runWithDeadline(deps.requestTimeoutMs, async () => {
    const unique = [...new Set(userIds)];
    const changed =
      change === 'add' ? await addTopicSubscribers(deps.sql, topic, unique) : await removeTopicSubscribers(deps.sql, topic, unique);
    return { topic, subscribers: await countTopicSubscribers(deps.sql, topic), changed };
  });
}

export async function getTopic(deps: Deps, topic: string): Promise<TopicSummary> {
  return { topic, subscribers: await runWithDeadline(deps.requestTimeoutMs, () => countTopicSubscribers(deps.sql, topic)) };
}
