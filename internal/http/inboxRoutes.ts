import { Hono } from 'hono';
import type { Sql } from '../database.ts';
import { readInbox } from '../inboxService.ts';
import { inboxPage } from './inboxQuery.ts';
import { userIdParam } from './pathParams.ts';

/** A user's in-app inbox as the producer's backend reads it, newest first. */
export function inboxRoutes(deps: { sql: Sql; requestTimeoutMs: number }): Hono {
  const app = new Hono();
  app.get('/:userId/inbox', async (c) => c.json(await readInbox(deps, userIdParam(c.req.param('userId')), inboxPage(c))));
  return app;
}
