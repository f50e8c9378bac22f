import { z } from 'zod';
import { notificationJsonSchema } from './notification.ts';

/** `GET /admin/dead-letters`: a page of FAILED notifications; the OpenAPI document is generated from this schema. */
export const deadLetterPageSchema = z
  .object({
    items: z.array(notificationJsonSchema).meta({ description: 'FAILED notifications, the latest failure first; `updated_at` is when each failed' }),
    next_cursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next (older) page; null on the last page' }),
  })
  .meta({ id: 'DeadLetterPage' });

export type DeadLetterPage = z.infer<typeof deadLetterPageSchema>;

/** `POST /admin/dead-letters/replay`: what a replay of dead letters did; the OpenAPI document is generated from this schema. */
export const replaySummarySchema = z
  .object({
    replay_id: z.guid().meta({ description: 'the dead_letter_replays row recording this replay' }),
    dry_run: z.boolean(),
    replayed: z.int().min(0).meta({ description: 'put back to PENDING and queued (on a dry run: would have been)' }),
    skipped: z.int().min(0).meta({ description: 'selected but not FAILED by the time their batch came: unknown, or replayed already' }),
  })
  .meta({ id: 'ReplaySummary' });

export type ReplaySummary = z.infer<typeof replaySummarySchema>;
