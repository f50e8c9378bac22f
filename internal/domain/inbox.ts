import { z } from 'zod';
import { inboxItemJsonSchema } from './inboxItem.ts';

/** A page of an inbox as `GET /inbox` and `GET /users/:id/inbox` answer it. */
export const inboxListingSchema = z
  .object({
    items: z.array(inboxItemJsonSchema),
    next_cursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next (older) page; null on the last page' }),
    unread: z.int().min(0),
  })
  .meta({ id: 'InboxPage' });

export type InboxListing = z.infer<typeof inboxListingSchema>;

/** `GET /inbox/unread_count`. */
export const unreadCountJsonSchema = z.object({ unread: z.int().min(0) }).meta({ id: 'UnreadCount' });

export type UnreadCount = z.infer<typeof unreadCountJsonSchema>;

/** `POST /inbox/read_all`: how many items this marked read. */
export const markedJsonSchema = z.object({ marked: z.int().min(0) }).meta({ id: 'MarkedRead' });

export type MarkedRead = z.infer<typeof markedJsonSchema>;
