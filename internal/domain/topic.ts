import { z } from 'zod';
import { storableText, userIdSchema } from './storableText.ts';

/** A topic key: what producers name a group of subscribers by ("order-42-followers"). */
export const topicKeySchema = storableText(200).regex(/^[\w.:@-]+$/, 'may hold only letters, digits and _ . : @ -');

/** Users added to or removed from a topic by one request. */
export const MAX_SUBSCRIBERS_PER_REQUEST = 1000;

/** `PUT /topics/:key/subscribers` and its DELETE: the users to add or remove. */
export const topicSubscribersSchema = z.object({
  user_ids: z.array(userIdSchema).min(1).max(MAX_SUBSCRIBERS_PER_REQUEST),
});

/** A topic as `GET /topics/:key` answers it. */
export const topicSummarySchema = z.object({ topic: z.string(), subscribers: z.int().min(0) }).meta({ id: 'Topic' });
export type TopicSummary = z.infer<typeof topicSummarySchema>;

/** A change of subscribers: the topic as it is now, and how many users were added or removed. */
export const topicChangeSchema = topicSummarySchema
  .extend({ changed: z.int().min(0).meta({ description: 'users added (PUT) or removed (DELETE) by this request' }) })
  .meta({ id: 'TopicChange' });
export type TopicChange = z.infer<typeof topicChangeSchema>;
