import { ValidationError } from '../domain/errors.ts';
import type { ChannelProvider } from './channelProvider.ts';

/**
 * IN_APP: delivered when stored in the user's inbox, which the API reads. Always available, and
 * never delivered by an attempt of its own: the worker's claim stores the inbox item in the
 * statement that records the notification SENT (`claimBatch`).
 */
export class InAppChannel implements ChannelProvider {
  readonly channel = 'IN_APP' as const;
  readonly deliveredWhenRecorded = 'inbox' as const;

  checkAddress(to: string | undefined): null {
    if (to !== undefined) {
      throw new ValidationError('IN_APP notifications go to the user_id\'s inbox and take no "to"', 'invalid_request', [
        { path: 'to', message: 'not used by IN_APP' },
      ]);
    }
    return null;
  }
}
