import type { Logger } from '../platform/logger.ts';
import type { Redis } from '../platform/redis.ts';
import { toInboxItemJson, type InboxItem } from '../domain/inboxItem.ts';

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
