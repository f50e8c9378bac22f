import { Hono } from 'hono';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { topicSubscribersSchema } from '../../domain/topic.ts';
import { changeTopicSubscribers, getTopic } from '../../service/topicService.ts';
import { limitBody, readJson } from '../request/jsonBody.ts';
import { topicParam } from '../request/pathParams.ts';

/** Topics: named groups of users a notification can fan out to (`POST /notifications` with `topic`). */
export function topicRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): Hono {
  const app = new Hono();

  app.put('/:topic/subscribers', limitBody, async (c) => {
    const topic = topicParam(c.req.param('topic'));
    const { user_ids } = await readJson(c, topicSubscribersSchema);
    return c.json(await changeTopicSubscribers(deps, topic, user_ids, 'add'));
  });

  app.delete('/:topic/subscribers', limitBody, async (c) => {
    const topic = topicParam(c.req.param('topic'));
    const { user_ids } = await readJson(c, topicSubscribersSchema);
    return c.json(await changeTopicSubscribers(deps, topic, user_ids, 'remove'));
  });

  app.get('/:topic', async (c) => c.json(await getTopic(deps, topicParam(c.req.param('topic')))));

  return app;
}
