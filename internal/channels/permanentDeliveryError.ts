/**
 * A delivery failure that retrying cannot fix (the receiver refused the message, the address is
 * not allowed). The worker fails the notification at once instead of spending its retries.
 */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}
