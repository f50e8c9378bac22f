import { UnavailableError } from '../domain/errors.ts';
import type { InboxItemJson } from '../domain/inboxItem.ts';
import { inboxChannel } from './inboxPublisher.ts';
import type { Logger } from '../platform/logger.ts';
import type { Redis } from '../platform/redis.ts';

/** What a live connection hears from the hub. */
export interface InboxListener {
  onItem(item: InboxItemJson): void;
  /** Redis came back after an outage: what was published meanwhile is lost, catch up from PostgreSQL. */
  onResync(): void;
}

/** How long a connection waits for Redis to confirm its subscription before it is refused. */
const SUBSCRIBE_TIMEOUT_MS = 5000;

interface Subscription {
  listeners: Set<InboxListener>;
  /** Settles when Redis has acknowledged the SUBSCRIBE. */
  subscribed: Promise<void>;
}

/**
 * One API process's Redis Pub/Sub connection, shared by every live inbox connection it serves: a
 * user's channel is subscribed while at least one of their connections (tabs, devices) is open
 * here, and each new item published by a worker reaches all of them.
 */
export class InboxHub {
  private readonly subscriptions = new Map<string, Subscription>();
  private connectedBefore = false;

  constructor(
    private readonly subscriber: Redis,
    private readonly channelPrefix: string,
    private readonly logger: Logger,
  ) {
    subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    subscriber.on('ready', () => {
      if (this.connectedBefore) this.resyncAll();
      this.connectedBefore = true;
    });
  }

  /**
   * Adds a listener for `userId`'s new items; resolves once Redis confirms the subscription, so
   * anything published from then on reaches it. Returns the function that removes it.
   */
  async subscribe(userId: string, listener: InboxListener): Promise<() => void> {
    // While Redis is away a connection could hear nothing live: refuse it, the client retries.
    if (this.subscriber.status !== 'ready') throw new UnavailableError('redis');
    const channel = inboxChannel(this.channelPrefix, userId);
    let subscription = this.subscriptions.get(channel);
    if (!subscription) {
      const subscribed = this.subscriber.subscribe(channel).then(() => undefined);
      subscription = { listeners: new Set(), subscribed };
      this.subscriptions.set(channel, subscription);
      subscribed.catch(() => {
        if (this.subscriptions.get(channel) === subscription) this.subscriptions.delete(channel);
      });
    }
    subscription.listeners.add(listener);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError('redis', new Error('no SUBSCRIBE confirmation'))), SUBSCRIBE_TIMEOUT_MS);
    });
    try {
      await Promise.race([subscription.subscribed, timedOut]);
    } catch (err) {
      subscription.listeners.delete(listener);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return () => this.unsubscribe(channel, listener);
  }

  /** Live connections on this process, for logs and tests. */
  get connections(): number {
    let total = 0;
    for (const s of this.subscriptions.values()) total += s.listeners.size;
    return total;
  }

  private unsubscribe(channel: string, listener: InboxListener): void {
    const subscription = this.subscriptions.get(channel);
    if (!subscription?.listeners.delete(listener) || subscription.listeners.size > 0) return;
    this.subscriptions.delete(channel);
    this.subscriber.unsubscribe(channel).catch((err: unknown) => this.logger.debug({ err, channel }, 'unsubscribe failed'));
  }

  private dispatch(channel: string, message: string): void {
    const subscription = this.subscriptions.get(channel);
    if (!subscription) return;
    let item: InboxItemJson;
    try {
      item = JSON.parse(message) as InboxItemJson;
    } catch (err) {
      this.logger.warn({ err, channel }, 'unreadable inbox message dropped');
      return;
    }
    for (const listener of subscription.listeners) listener.onItem(item);
  }

  private resyncAll(): void {
    this.logger.info({ connections: this.connections }, 'inbox subscriptions back; live connections catch up');
    for (const subscription of this.subscriptions.values()) {
      for (const listener of subscription.listeners) listener.onResync();
    }
  }
}
