import { z } from 'zod';
import { notificationJsonSchema } from './notification.ts';

/** One item of a user's in-app inbox. `seq` numbers a user's items in the order they arrived. */
export interface InboxItem {
  notification_id: string;
  user_id: string;
  seq: number;
  title: string | null;
  body: string;
  data: Record<string, unknown> | null;
  created_at: Date;
  read_at: Date | null;
  archived_at: Date | null;
}

/**
 * An inbox item as clients receive it (in a list, a stream event, a Pub/Sub message). Its copy of
 * the notification's content is the notification's own fields, so the two shapes cannot drift.
 */
export const inboxItemJsonSchema = z
  .object({
    notification_id: z.guid(),
    seq: z.int().min(1).meta({ description: "the item's position in its user's inbox: 1, 2, 3... in the order stored" }),
    ...notificationJsonSchema.pick({ title: true, body: true, data: true, created_at: true }).shape,
    read_at: z.iso.datetime().nullable(),
    archived_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'InboxItem' });

export type InboxItemJson = z.infer<typeof inboxItemJsonSchema>;

export function toInboxItemJson({ notification_id, seq, title, body, data, created_at, read_at, archived_at }: InboxItem): InboxItemJson {
  return { notification_id, seq, title, body, data, created_at: created_at.toISOString(), read_at: isoOrNull(read_at), archived_at: isoOrNull(archived_at) };
}

function isoOrNull(time: Date | null): string | null {
  return time?.toISOString() ?? null;
}
