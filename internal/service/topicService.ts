import { z } from 'zod';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { addTopicSubscribers, countTopicSubscribers, removeTopicSubscribers } from '../repository/topics.ts';

type Deps = { sql: Sql; requestTimeoutMs: number };

/** A topic as `GET /topics/:key` answers it. */
export const topicSummarySchema = z.object({ topic: z.string(), subscribers: z.int().min(0) }).meta({ id: 'Topic' });
export type TopicSummary = z.infer<typeof topicSummarySchema>;

/** A change of subscribers: the topic as it is now, and how many users were added or removed. */
export const topicChangeSchema = topicSummarySchema
  .extend({ changed: z.int().min(0).meta({ description: 'users added (PUT) or removed (DELETE) by this request' }) })
  .meta({ id: 'TopicChange' });
export type TopicChange = z.infer<typeof topicChangeSchema>;

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
