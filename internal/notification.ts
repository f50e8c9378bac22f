import { z } from 'zod';

export const CHANNELS = ['EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK'] as const;
export type Channel = (typeof CHANNELS)[number];

export const STATUSES = ['PENDING', 'PROCESSING', 'SENT', 'FAILED'] as const;
export type Status = (typeof STATUSES)[number];

/** A `notifications` row as postgres.js returns it. */
export interface NotificationRow {
  id: string;
  user_id: string;
  type: Channel;
  title: string | null;
  body: string;
  recipient: string | null;
  data: Record<string, unknown> | null;
  status: Status;
  retry_count: number;
  error_reason: string | null;
  attempt: number;
  locked_by: string | null;
  claimed_at: Date | null;
  lease_expires_at: Date | null;
  available_at: Date;
  queued_at: Date | null;
  dead_lettered_at: Date | null;
  sent_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** `POST /notifications` body. Unknown fields are dropped, so older clients' extras do no harm. */
export const createNotificationSchema = z.object({
  user_id: z.string().trim().min(1).max(255),
  type: z.enum(CHANNELS),
  title: z.string().max(1000).optional(),
  body: z.string().min(1).max(100_000),
  to: z.string().trim().min(1).max(2048).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export type CreateNotification = z.infer<typeof createNotificationSchema>;

/** The notification as the API and webhooks show it (the contract's JSON shape). */
export interface NotificationJson {
  id: string;
  user_id: string;
  type: Channel;
  title: string | null;
  body: string;
  to: string | null;
  data: Record<string, unknown> | null;
  status: Status;
  retry_count: number;
  error_reason: string | null;
  created_at: string;
  updated_at: string;
}

export function toNotificationJson(row: NotificationRow): NotificationJson {
  return {
    id: row.id,
    user_id: row.user_id,
    type: row.type,
    title: row.title,
    body: row.body,
    to: row.recipient,
    data: row.data,
    status: row.status,
    retry_count: row.retry_count,
    error_reason: row.error_reason,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
