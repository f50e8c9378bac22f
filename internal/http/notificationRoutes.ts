import { Hono } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { createNotificationSchema, toNotificationJson } from '../notification.ts';
import { createNotification, getNotification, type NotificationServiceDeps } from '../notificationService.ts';
import { limitBody, readJson } from './jsonBody.ts';

const idSchema = z.guid();

export function notificationRoutes(deps: NotificationServiceDeps): Hono {
  const app = new Hono();

  app.post('/', limitBody, async (c) => {
    const request = await readJson(c, createNotificationSchema);
    const { row, created } = await createNotification(deps, request, c.req.header('idempotency-key'));
    c.header('Location', `/notifications/${row.id}`);
    return c.json(toNotificationJson(row), created ? 201 : 200);
  });

  app.get('/:id', async (c) => {
    const id = c.req.param('id');
    if (!idSchema.safeParse(id).success) {
      throw new ValidationError(`"${id.slice(0, 64)}" is not a notification id (a UUID)`, 'invalid_id');
    }
    return c.json(toNotificationJson(await getNotification(deps, id)));
  });

  return app;
}
