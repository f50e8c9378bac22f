import type { Channel, NotificationRow } from '../notification.ts';

/**
 * How one channel delivers. `deliver` resolves when the notification is delivered; it throws
 * `PermanentDeliveryError` for a failure that retrying cannot fix and any other error for one worth
 * retrying. It must give up when `signal` aborts.
 */
export interface ChannelProvider {
  readonly channel: Channel;
  /**
   * Checks the request's `to` when the notification is created and returns the address to store;
   * throws `ValidationError` when the channel cannot use it.
   */
  checkAddress(to: string | undefined): string | null;
  deliver(notification: NotificationRow, signal: AbortSignal): Promise<void>;
}
