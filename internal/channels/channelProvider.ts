import type { Channel, NotificationRow } from '../domain/notification.ts';
import type { ProfileAddress, PushSubscription } from '../domain/recipient.ts';

/** What a notification says, the same for every user it goes to. */
export type NotificationContent = Pick<NotificationRow, 'title' | 'body' | 'html' | 'data'>;

/**
 * Stored data a delivery needs beyond the notification, read by the caller (channels hold no SQL):
 * a PUSH notification goes to its user's push subscriptions.
 */
export interface RecipientData {
  pushSubscriptions?: PushSubscription[];
}

/**
 * Stored data an attempt found out of date, for the caller to write back: the push subscriptions
 * whose push service answered 404 or 410 (gone for good).
 */
export interface DeliveryChanges {
  expiredPushSubscriptions?: PushSubscription[];
}

/**
 * How one channel delivers. `deliver` resolves when the notification is delivered; it throws
 * `PermanentDeliveryError` for a failure that retrying cannot fix, `RetryLaterError` when the
 * provider said how long to wait, and any other error for one worth retrying. It must give up when
 * `signal` aborts. It answers what it found changed, on failure too (see `failureChanges`).
 */
export interface ChannelProvider {
  readonly channel: Channel;
  /** Unset for a channel that needs no address (IN_APP). */
  readonly profileAddress?: ProfileAddress;
  /**
   * Checks an address (the request's `to`, or the profile's) when the notification is created and
   * returns the address to store; throws `ValidationError` when the channel cannot use it.
   */
  checkAddress(to: string | undefined): string | null;
  /**
   * Refuses at creation (`ValidationError`) content the channel could never carry (an SMS over the
   * provider's length limit, a push payload over Web Push's size limit), rather than failing later.
   */
  checkContent?(content: NotificationContent): void;
  /** Unset for a channel delivered when its attempt is recorded (see `deliveredWhenRecorded`). */
  deliver?(notification: NotificationRow, signal: AbortSignal, recipient: RecipientData): Promise<DeliveryChanges | void>;
  /**
   * One attempt's time limit, set by a channel whose stored data the caller reads first (PUSH): the
   * caller runs that read, `deliver` and the write-back under it, so the whole attempt stays within
   * the limit the lease is sized for.
   */
  readonly attemptTimeoutMs?: number;
  /** Closes connections the provider keeps open between deliveries. */
  close?(): Promise<void> | void;
  /**
   * Set by a channel whose delivery is nothing but a row written in PostgreSQL (IN_APP's inbox
   * item). Such a channel has no `deliver`: the worker's claim writes that row in the statement
   * that records the notification SENT, so the row exists exactly when the notification is SENT.
   * Channels that talk to the outside world leave it unset and are delivered first, recorded after.
   */
  readonly deliveredWhenRecorded?: 'inbox';
}
