import type { DeliveryChanges } from './channelProvider.ts';

/** A delivery error that also says what the failed attempt found changed. */
type FailureWithChanges = Error & { deliveryChanges: DeliveryChanges };

/**
 * Attaches to a delivery failure what the attempt found changed, so the caller writes it back
 * before recording the failure: a push whose every subscription expired fails, and its expired
 * subscriptions must still be removed. The error keeps its class, so callers branch on it as before.
 */
export function withFailureChanges(err: unknown, changes: DeliveryChanges): unknown {
  if (err instanceof Error) (err as FailureWithChanges).deliveryChanges = changes;
  return err;
}

/** What a failed delivery found changed, when its channel said. */
export function failureChanges(err: unknown): DeliveryChanges | undefined {
  return err instanceof Error ? (err as Partial<FailureWithChanges>).deliveryChanges : undefined;
}
