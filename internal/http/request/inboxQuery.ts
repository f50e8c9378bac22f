import type { Context } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../../domain/errors.ts';
import type { InboxPage } from '../../service/inboxService.ts';

/** `?limit&cursor&unread` of an inbox listing. */
export const inboxPageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  // seq is an int column: larger numbers name no item and PostgreSQL would refuse them.
  cursor: z.coerce.number().int().min(1).max(2_147_483_647).optional(),
  unread: z.enum(['true', 'false']).optional(),
});

/** `?limit=1..200&cursor=<next_cursor>&unread=true` of an inbox listing. */
export function inboxPage(query: unknown): InboxPage {
  const parsed = inboxPageQuerySchema.safeParse(query);
  if (!parsed.success) {
    throw new ValidationError('limit must be 1 to 200, cursor a next_cursor from an earlier page, unread true or false', 'invalid_request');
  }
  const { limit, cursor, unread } = parsed.data;
  return { limit, beforeSeq: cursor, unreadOnly: unread === 'true' };
}

/** A live connection's `since`: the seq of the last item the client has. */
export const sinceSeqSchema = z.coerce.number().int().min(0).max(2_147_483_647);

/** Where a live connection starts: `?since=<seq>`, or an EventSource's `Last-Event-ID` on reconnect. */
export function sinceSeq(c: Context): number {
  const given = c.req.header('last-event-id') || c.req.query('since');
  if (given === undefined || given === '') return 0;
  const parsed = sinceSeqSchema.safeParse(given);
  if (!parsed.success) throw new ValidationError('since (or Last-Event-ID) must be the seq of the last item the client has', 'invalid_request');
  return parsed.data;
}
