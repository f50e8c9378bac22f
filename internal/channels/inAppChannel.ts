import type { Sql } from '../platform/database.ts';
import { ValidationError } from '../domain/errors.ts';
import type { NotificationRow } from '../domain/notification.ts';
import { storeInInbox } from '../repository/inbox.ts';
import type { ChannelProvider } from './channelProvider.ts';

/** IN_APP: delivered when stored in the user's inbox, which the API reads. */
export class InAppChannel implements ChannelProvider {
  readonly channel = 'IN_APP' as const;
  /** The worker stores the inbox item while recording SENT; `deliver` does the same on its own. */
  readonly deliveredWhenRecorded = 'inbox' as const;

  constructor(private readonly sql: Sql) {}

  checkAddress(to: string | undefined): null {
    if (to !== undefined) {
      throw new ValidationError('IN_APP notifications go to the user_id\'s inbox and take no "to"', 'invalid_request', [
        { path: 'to', message: 'not used by IN_APP' },
      ]);
    }
    return null;
  }

  async deliver(notification: NotificationRow): Promise<void> {
    await storeInInbox(this.sql, notification);
  }
}
