import { OpenAPIHono } from '@hono/zod-openapi';
import { inboxListingSchema, readInbox } from '../../service/inboxService.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { json } from '../openapi/answers.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { inboxPage, inboxPageQuerySchema } from '../request/inboxQuery.ts';
import { refuseAs } from '../request/invalidInput.ts';
import { userIdParam, userParams } from '../request/pathParams.ts';

const readRoute = producerRoutes('Recipients').get('/{userId}/inbox', {
  summary: "A user's in-app inbox, newest first, as the producer's backend reads it",
  request: { params: userParams, query: inboxPageQuerySchema },
  responses: { 200: json(inboxListingSchema, 'a page of the inbox (archived items left out) and the unread count') },
  errors: { 400: 'a bad user id, `limit`, `cursor` or `unread`' },
});

/** A user's in-app inbox as the producer's backend reads it, newest first. */
export function inboxRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(
    app,
    readRoute,
    async (c) => c.json(await readInbox(deps, c.req.valid('param').userId, inboxPage(c.req.valid('query'))), 200),
    refuseAs((c) => {
      userIdParam(c.req.param('userId') ?? '');
      inboxPage(c.req.query());
    }),
  );
  return app;
}
