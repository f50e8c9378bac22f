import { z } from 'zod';
import { isStorableText, storableText, UNSTORABLE_MESSAGE, userIdSchema } from './storableText.ts';
import { topicKeySchema } from './topic.ts';

export const CHANNELS = ['EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK'] as const;
export type Channel = (typeof CHANNELS)[number];

export const STATUSES = ['PENDING', 'PROCESSING', 'SENT', 'FAILED', 'SKIPPED'] as const;
export type Status = (typeof STATUSES)[number];

/** A `notifications` row as postgres.js returns it. */
export interface NotificationRow {
  id: string;
  user_id: string;
  type: Channel;
  title: string | null;
  body: string;
  recipient: string | null;
  /** EMAIL's HTML part. */
  html: string | null;
  data: Record<string, unknown> | null;
  /** Delivered even on a channel the user opted out of. */
  critical: boolean;
  fanout_id: string | null;
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

/** How deeply `data` may nest; deeper JSON could not be serialised or stored. */
export const MAX_DATA_DEPTH = 32;

/** Why `data` cannot be stored as jsonb, if it cannot; walks the value without recursion. */
function dataProblem(data: Record<string, unknown>): string | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: data, depth: 1 }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { value, depth } = next;
    if (typeof value === 'string') {
      if (!isStorableText(value)) return UNSTORABLE_MESSAGE;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_DATA_DEPTH) return `must not nest deeper than ${MAX_DATA_DEPTH} levels`;
    for (const [key, child] of Object.entries(value)) {
      if (!isStorableText(key)) return UNSTORABLE_MESSAGE;
      stack.push({ value: child, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Users one `POST /notifications` with `user_ids` may address. */
export const MAX_FANOUT_USERS = 1000;

/**
 * `POST /notifications` body: one notification for `user_id`, one per user for `user_ids`, or one
 * per subscriber of `topic`. Unknown fields are dropped, so older clients' extras do no harm.
 */
export const createNotificationSchema = z
  .object({
    user_id: userIdSchema.optional(),
    user_ids: z.array(userIdSchema).min(1).max(MAX_FANOUT_USERS).optional(),
    topic: topicKeySchema.optional(),
    type: z.enum(CHANNELS),
    title: z.string().max(1000).refine(isStorableText, UNSTORABLE_MESSAGE).optional(),
    body: z.string().min(1).max(100_000).refine(isStorableText, UNSTORABLE_MESSAGE),
    html: z.string().min(1).max(500_000).refine(isStorableText, UNSTORABLE_MESSAGE).optional(),
    to: storableText(2048)
      .optional()
      .meta({ description: "with `user_id` only: an email address, an E.164 number or an http(s) URL; without it the user's profile address is used" }),
    data: z
      .record(z.string(), z.unknown())
      .superRefine((data, ctx) => {
        const problem = dataProblem(data);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .meta({ description: `any JSON object, nested at most ${MAX_DATA_DEPTH} levels` }),
    critical: z.boolean().optional().meta({ description: 'delivered even on a channel the user opted out of' }),
  })
  .superRefine((request, ctx) => {
    const targets = [request.user_id, request.user_ids, request.topic].filter((t) => t !== undefined);
    if (targets.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['user_id'], message: 'give exactly one of user_id, user_ids or topic' });
    }
    if (request.to !== undefined && request.user_id === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: 'addresses one user; with user_ids or topic each user gets the address in their profile',
      });
    }
    if (request.html !== undefined && request.type !== 'EMAIL') {
      ctx.addIssue({ code: 'custom', path: ['html'], message: 'only EMAIL has an HTML part' });
    }
  })
  .meta({
    id: 'CreateNotification',
    description: 'Exactly one of `user_id`, `user_ids` or `topic`; `to` only with `user_id`; `html` only with EMAIL. Text may not contain NUL. Unknown fields are dropped.',
  });

export type CreateNotification = z.infer<typeof createNotificationSchema>;

/**
 * The notification as the API and webhooks show it (the contract's JSON shape). The OpenAPI
 * document is generated from this schema, and `NotificationJson` is inferred from it, so the
 * documented shape and the built one cannot drift apart.
 */
export const notificationJsonSchema = z
  .object({
    id: z.guid(),
    user_id: z.string(),
    type: z.enum(CHANNELS),
    title: z.string().nullable(),
    body: z.string(),
    to: z.string().nullable().meta({
      description:
        "the address delivered to: the request's `to`, else the profile's at creation (`null` in a create's answer to a key without the `read` scope, which cannot read profiles)",
    }),
    html: z.string().nullable(),
    data: z.record(z.string(), z.unknown()).nullable(),
    critical: z.boolean(),
    fanout_id: z.guid().nullable(),
    status: z.enum(STATUSES),
    retry_count: z.int().min(0),
    error_reason: z.string().nullable(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Notification' });

export type NotificationJson = z.infer<typeof notificationJsonSchema>;

export function toNotificationJson(row: NotificationRow): NotificationJson {
  return {
    id: row.id,
    user_id: row.user_id,
    type: row.type,
    title: row.title,
    body: row.body,
    to: row.recipient,
    html: row.html,
    data: row.data,
    critical: row.critical,
    fanout_id: row.fanout_id,
    status: row.status,
    retry_count: row.retry_count,
    error_reason: row.error_reason,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
