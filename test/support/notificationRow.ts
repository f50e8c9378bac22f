import { randomUUID } from 'node:crypto';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import type { NewNotification } from '../../internal/repository/notifications.ts';

/** A notification as the API hands it to the repository: IN_APP to user-1 unless `overrides` say otherwise. */
export function newNotification(overrides: Partial<NewNotification> = {}): NewNotification {
  return {
    id: randomUUID(),
    user_id: 'user-1',
    type: 'IN_APP',
    title: 'Title',
    body: 'Body',
    recipient: null,
    html: null,
    data: null,
    critical: false,
    ...overrides,
  };
}

/** A notification as a worker holds it after claiming it, for calling a channel's `deliver` directly. */
export function claimedRow(fields: Partial<NotificationRow> & Pick<NotificationRow, 'type'>): NotificationRow {
  const now = new Date();
  return {
    ...newNotification(),
    fanout_id: null,
    status: 'PROCESSING',
    retry_count: 0,
    error_reason: null,
    attempt: 1,
    locked_by: 'worker-1',
    claimed_at: now,
    lease_expires_at: now,
    available_at: now,
    queued_at: now,
    dead_lettered_at: null,
    sent_at: null,
    created_at: now,
    updated_at: now,
    ...fields,
  };
}
