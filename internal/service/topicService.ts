import type { TopicChange, TopicSummary } from '../domain/topic.ts';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { addTopicSubscribers, countTopicSubscribers, removeTopicSubscribers } from '../repository/topics.ts';

type Deps = { sql: Sql; requestTimeoutMs: number };

/** Adds or removes a topic's subscribers; answers how many changed and how many there are now. */
export async function changeTopicSubscribers(
  deps: Deps,
  topic: string,
  userIds: string[],
  change: 'add' | 'remove',
): Promise<TopicChange> {
  const unique = [...new Set(userIds)];
  const write = change === 'add' ? addTopicSubscribers : removeTopicSubscribers;
  const changed = await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) => write(deps.sql, topic, unique, beforeCommit));
  // Stored already: a PUT or DELETE repeated after a 503 here changes nothing more.
  return { topic, subscribers: await runWithDeadline(deps.requestTimeoutMs, () => countTopicSubscribers(deps.sql, topic)), changed };
}

export async function getTopic(deps: Deps, topic: string): Promise<TopicSummary> {
  return { topic, subscribers: await runWithDeadline(deps.requestTimeoutMs, () => countTopicSubscribers(deps.sql, topic)) };
}
