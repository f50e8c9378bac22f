import { z } from 'zod';
import type { Logger } from '../platform/logger.ts';
import type { Redis } from '../platform/redis.ts';
import type { InboxItem } from '../repository/inbox.ts';

/** An inbox item as clients receive it (in a list, a stream event, a Pub/Sub message). */
export const inboxItemJsonSchema = z
  .object({
    notification_id: z.guid(),
    seq: z.int().min(1).meta({ description: "the item's position in its user's inbox: 1, 2, 3... in the order stored" }),
    title: z.string().nullable(),
    body: z.string(),
    data: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.iso.datetime(),
    read_at: z.iso.datetime().nullable(),
    archived_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'InboxItem' });

export type InboxItemJson = z.infer<typeof inboxItemJsonSchema>;

export function toInboxItemJson(item: InboxItem): InboxItemJson {
  return {
    notification_id: item.notification_id,
    seq: item.seq,
    title: item.title,
    body: item.body,
    data: item.data,
    created_at: item.created_at.toISOString(),
    read_at: item.read_at?.toISOString() ?? null,
    archived_at: item.archived_at?.toISOString() ?? null,
  };
}

/** The Pub/Sub channel carrying one user's new inbox items. */
export function inboxChannel(prefix: string, userId: string): string {
  return `${prefix}:${userId}`;
}

/**
 * Tells API instances about inbox items just committed, one PUBLISH per item in one round trip.
 * Best effort: a lost message leaves a gap in a live stream, which the stream fills from
 * PostgreSQL when the next item shows it (see `InboxSession`), or at the client's next connect.
 */
export class InboxPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly channelPrefix: string,
    private readonly logger: Logger,
  ) {}

  announce(items: InboxItem[]): void {
    if (items.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const item of items) pipeline.publish(inboxChannel(this.channelPrefix, item.user_id), JSON.stringify(toInboxItemJson(item)));
    pipeline.exec().catch((err: unknown) => {
      this.logger.warn({ err, items: items.length }, 'inbox announcement failed; clients catch up from PostgreSQL');
    });
  }
}
