import { randomUUID } from 'node:crypto';
import type { NotificationRow } from '../../internal/domain/notification.ts';

/** A notification as a worker holds it after claiming it, for calling a channel's `deliver` directly. */
export function claimedRow(fields: Partial<NotificationRow> & Pick<NotificationRow, 'type'>): NotificationRow {
  const now = new Date();
  return {
    id: randomUUID(),
    user_id: 'user-1',
    title: 'Title',
    body: 'Body',
    recipient: null,
    html: null,
    data: null,
    critical: false,
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
