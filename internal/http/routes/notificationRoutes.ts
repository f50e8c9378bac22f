import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { attemptHistoryJsonSchema } from '../../domain/attemptHistory.ts';
import { getAttemptHistory } from '../../service/attemptHistory.ts';
import { fanoutJsonSchema, fanoutWithMembersJsonSchema } from '../../domain/fanout.ts';
import { createNotificationSchema, notificationJsonSchema } from '../../domain/notification.ts';
import { createNotification, getNotification, MAX_IDEMPOTENCY_KEY_LENGTH, type NotificationServiceDeps } from '../../service/notificationService.ts';
import { producerOf } from '../middleware/apiKeyAuth.ts';
import { json, jsonBody, location } from '../openapi/answers.ts';
import { readHandler } from '../openapi/readHandler.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';
import { requestHeader } from '../request/nodeRequest.ts';
import { idParams, refuseId } from '../request/pathParams.ts';

const createdJsonSchema = z.union([notificationJsonSchema, fanoutWithMembersJsonSchema]);

const notifications = producerRoutes('Notifications');

const createRoute = notifications.post('/', {
  summary: 'Create a notification, or one per user of a list or a topic',
  description:
    'Exactly one of `user_id`, `user_ids` (up to 1,000) or `topic`. A notification is answered only once it is committed in PostgreSQL. With an `Idempotency-Key`, a repeat of the same body answers the first outcome with 200.',
  request: {
    headers: z.object({
      'Idempotency-Key': z
        .string()
        .min(1)
        .max(MAX_IDEMPOTENCY_KEY_LENGTH)
        .optional()
        .meta({ description: "makes a retried request safe: kept 24 hours, each API key's own; the same key with another body is refused with 422" }),
    }),
    body: jsonBody(createNotificationSchema),
  },
  responses: {
    200: json(createdJsonSchema, 'an idempotent repeat: what the first request created'),
    201: json(createdJsonSchema, 'created: the notification (`user_id`), or the fan-out with every notification (`user_ids`)', location('notification or fan-out')),
    202: json(fanoutJsonSchema, "a topic's fan-out, stored: workers create its notifications next", location('fan-out')),
  },
  errors: {
    400: '`channel_not_configured`, `no_address` (the users in `details`), `webhook_target_not_allowed`, `invalid_idempotency_key` too',
    422: undefined,
    503: 'or more than MAX_QUEUE_DEPTH notifications wait for delivery (`overloaded`)',
  },
});

const readRoute = notifications.get('/{id}', {
  summary: 'Read a notification',
  request: { params: idParams },
  responses: { 200: json(notificationJsonSchema, 'the notification') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});

const attemptsRoute = notifications.get('/{id}/attempts', {
  summary: "A notification's delivery attempts, including the one under way",
  request: { params: idParams },
  responses: { 200: json(attemptHistoryJsonSchema, 'the attempts, oldest first') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});

/** `/notifications`: create one (or a fan-out), read one, and its delivery attempts. */
export function notificationRoutes(deps: NotificationServiceDeps): OpenAPIHono {
  const app = new OpenAPIHono();

  serveRoute(app, createRoute, async (c) => {
    const request = await readJson(c, createNotificationSchema);
    const answer = await createNotification(deps, request, producerOf(c), requestHeader(c, 'idempotency-key'));
    if (answer.kind === 'notification') {
      c.header('Location', `/notifications/${answer.notification.id}`);
      return c.json(answer.notification, answer.created ? 201 : 200);
    }
    c.header('Location', `/fanouts/${answer.fanout.fanout_id}`);
    // A topic's notifications are created after the answer: 202, and the fan-out to follow.
    if (answer.kind === 'topic') return c.json(answer.fanout, 202);
    return c.json(answer.fanout, answer.created ? 201 : 200);
  });

  serveRoute(app, readRoute, readHandler(({ id }) => getNotification(deps, id)), refuseId('notification'));

  serveRoute(app, attemptsRoute, readHandler(({ id }) => getAttemptHistory(deps, id)), refuseId('notification'));

  return app;
}
