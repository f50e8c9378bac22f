import { expect } from 'vitest';
import type { ChannelProvider, RecipientData } from '../../internal/channels/channelProvider.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** The error `act` throws, expected to be an instance of `type`; fails the test when `act` returns. */
export function thrownBy<E extends Error>(type: ErrorClass<E>, act: () => unknown, what = 'the call'): E {
  try {
    act();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`${what} threw nothing`);
}

/** The error `promise` rejects with, expected to be an instance of `type`; fails the test when it resolves. */
export async function rejectionOf<E extends Error>(type: ErrorClass<E>, promise: Promise<unknown>, what = 'the call'): Promise<E> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`${what} succeeded`);
}

/** The error a channel's `deliver` fails with; fails the test when the delivery succeeds. */
export function deliveryError(
  channel: Required<Pick<ChannelProvider, 'deliver'>>,
  row: NotificationRow,
  signal = new AbortController().signal,
  recipient: RecipientData = {},
): Promise<Error> {
  return rejectionOf(Error, channel.deliver(row, signal, recipient), 'delivery');
}

/** Why a stopping worker aborts the deliveries it still has under way. */
const WORKER_STOPPING = 'worker is stopping';

/**
 * Starts a delivery that resolves to its error (`failing(signal)`), waits until `arrived()` holds
 * (its request reached the server), then aborts it as a stopping worker does. Returns the error
 * and how long after the abort it came.
 */
export async function abortedMidway(
  failing: (signal: AbortSignal) => Promise<Error>,
  arrived: () => boolean,
): Promise<{ err: Error; msAfterAbort: number }> {
  const abort = new AbortController();
  const pending = failing(abort.signal);
  await expect.poll(arrived, { timeout: 10_000 }).toBe(true);
  const abortedAt = Date.now();
  abort.abort(new Error(WORKER_STOPPING));
  const err = await pending;
  return { err, msAfterAbort: Date.now() - abortedAt };
}
