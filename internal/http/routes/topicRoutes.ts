import { OpenAPIHono } from '@hono/zod-openapi';
import { topicSubscribersSchema } from '../../domain/topic.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { changeTopicSubscribers, getTopic, topicChangeSchema, topicSummarySchema } from '../../service/topicService.ts';
import { json, jsonBody } from '../openapi/answers.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';
import { refuseTopic, topicParam, topicParams } from '../request/pathParams.ts';

const topics = producerRoutes('Topics');

/** PUT adds subscribers, DELETE removes them: the same request, answered the same way. */
const changeRoute = (method: 'put' | 'delete', summary: string, changed: string) =>
  topics[method]('/{topic}/subscribers', {
    summary,
    request: { params: topicParams, body: jsonBody(topicSubscribersSchema) },
    responses: { 200: json(topicChangeSchema, `the topic's subscribers now, and how many this ${changed}`) },
  });

const readRoute = topics.get('/{topic}', {
  summary: "A topic's subscriber count",
  request: { params: topicParams },
  responses: { 200: json(topicSummarySchema, 'the topic (0 subscribers for one never used)') },
  errors: { 400: 'not a topic key' },
});

/** Topics: named groups of users a notification can fan out to (`POST /notifications` with `topic`). */
export function topicRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): OpenAPIHono {
  const app = new OpenAPIHono();

  for (const [route, change] of [
    [changeRoute('put', "Add users to a topic's subscribers (again is harmless)", 'added'), 'add'],
    [changeRoute('delete', "Remove users from a topic's subscribers", 'removed'), 'remove'],
  ] as const) {
    serveRoute(
      app,
      route,
      async (c) => {
        // The declared key is trimmed; the topic is exactly what the path says, or refused.
        const topic = topicParam(c.req.param('topic'));
        const { user_ids } = await readJson(c, topicSubscribersSchema);
        return c.json(await changeTopicSubscribers(deps, topic, user_ids, change), 200);
      },
      refuseTopic,
    );
  }

  serveRoute(app, readRoute, async (c) => c.json(await getTopic(deps, topicParam(c.req.param('topic'))), 200), refuseTopic);

  return app;
}
