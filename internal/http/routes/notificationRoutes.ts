import { Hono } from 'hono';
import { getAttemptHistory } from '../../service/attemptHistory.ts';
import { createNotificationSchema, toNotificationJson } from '../../domain/notification.ts';
import { createNotification, getNotification, type NotificationServiceDeps } from '../../service/notificationService.ts';
import { fanoutJson, fanoutWithMembersJson } from '../request/fanoutJson.ts';
import { limitBody, readJson } from '../request/jsonBody.ts';
import { requestHeader } from '../request/nodeRequest.ts';
import { uuidParam } from '../request/pathParams.ts';

export function notificationRoutes(deps: NotificationServiceDeps): Hono {
  const app = new Hono();

  app.post('/', limitBody, async (c) => {
    const request = await readJson(c, createNotificationSchema);
    const outcome = await createNotification(deps, request, requestHeader(c, 'idempotency-key'));
    if (outcome.kind === 'notification') {
      c.header('Location', `/notifications/${outcome.row.id}`);
      return c.json(toNotificationJson(outcome.row), outcome.created ? 201 : 200);
    }
    c.header('Location', `/fanouts/${outcome.fanout.id}`);
    // A topic's notifications are created after the answer: 202, and the fan-out to follow. Built
    // from what was stored, not read again: a failing second read must not refuse what is stored.
    if (outcome.fanout.topic !== null) return c.json(fanoutJson({ fanout: outcome.fanout, counts: {} }), 202);
    return c.json(fanoutWithMembersJson(outcome.fanout, outcome.members), outcome.created ? 201 : 200);
  });

  app.get('/:id', async (c) => {
    const id = uuidParam(c.req.param('id'), 'notification');
    return c.json(toNotificationJson(await getNotification(deps, id)));
  });

  app.get('/:id/attempts', async (c) => {
    const id = uuidParam(c.req.param('id'), 'notification');
    return c.json(await getAttemptHistory(deps, id));
  });

  return app;
}
