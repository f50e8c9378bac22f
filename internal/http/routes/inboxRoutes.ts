import { Hono } from 'hono';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { readInbox } from '../../service/inboxService.ts';
import { inboxPage } from '../request/inboxQuery.ts';
import { userIdParam } from '../request/pathParams.ts';

/** A user's in-app inbox as the producer's backend reads it, newest first. */
export function inboxRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): Hono {
  const app = new Hono();
  app.get('/:userId/inbox', async (c) => c.json(await readInbox(deps, userIdParam(c.req.param('userId')), inboxPage(c))));
  return app;
}
