import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../database.ts';
import { runWithDeadline } from '../deadline.ts';
import { ValidationError } from '../errors.ts';
import { listInbox } from '../repository/inbox.ts';

const limitSchema = z.coerce.number().int().min(1).max(200).default(50);

/** A user's in-app inbox, newest first. */
export function inboxRoutes(deps: { sql: Sql; requestTimeoutMs: number }): Hono {
  const app = new Hono();

  app.get('/:userId/inbox', async (c) => {
    const limit = limitSchema.safeParse(c.req.query('limit'));
    if (!limit.success) throw new ValidationError('limit must be a whole number from 1 to 200', 'invalid_request');
    const userId = c.req.param('userId');
    // PostgreSQL text cannot hold NUL, so no user has one; the query would fail rather than find nothing.
    if (userId.includes('\u0000')) throw new ValidationError('user id must not contain the NUL character (U+0000)', 'invalid_request');
    const items = await runWithDeadline(deps.requestTimeoutMs, () => listInbox(deps.sql, userId, limit.data));
    return c.json({
      items: items.map((i) => ({
        notification_id: i.notification_id,
        title: i.title,
        body: i.body,
        data: i.data,
        created_at: i.created_at.toISOString(),
        read_at: i.read_at?.toISOString() ?? null,
      })),
    });
  });

  return app;
}
