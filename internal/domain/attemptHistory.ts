import { z } from 'zod';
import { STATUSES } from './notification.ts';

/** An attempt as `GET /notifications/:id/attempts` shows it; `outcome` is null while under way. */
export const attemptJsonSchema = z
  .object({
    attempt: z.int().min(1),
    worker_id: z.string().nullable(),
    started_at: z.iso.datetime(),
    finished_at: z.iso.datetime().nullable(),
    outcome: z.string().nullable().meta({ description: '`SENT`, `RETRY`, `FAILED`, `SKIPPED`, `RELEASED`, `LEASE_EXPIRED`; null while under way' }),
    error: z.string().nullable(),
    lease_expires_at: z.iso.datetime().optional().meta({ description: 'only on the attempt under way: when another worker may take it over' }),
  })
  .meta({ id: 'Attempt' });

export type AttemptJson = z.infer<typeof attemptJsonSchema>;

/** `GET /notifications/:id/attempts`: a notification's attempts; the OpenAPI document is generated from this schema. */
export const attemptHistoryJsonSchema = z
  .object({ notification_id: z.guid(), status: z.enum(STATUSES), attempts: z.array(attemptJsonSchema) })
  .meta({ id: 'AttemptHistory' });

export type AttemptHistoryJson = z.infer<typeof attemptHistoryJsonSchema>;
