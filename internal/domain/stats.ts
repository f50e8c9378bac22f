import { z } from 'zod';
import { STATUSES } from './notification.ts';

/** `GET /stats`, the shape the original service answered, with `by_status` added. */
export const statsJsonSchema = z
  .object({
    sent_total: z.int().min(0),
    failed_total: z.int().min(0),
    failed_attempts_total: z.int().min(0),
    retries_total: z.int().min(0),
    average_delivery_ms: z.number().nullable().meta({ description: 'mean created → SENT over the last hour; null when nothing was sent in it' }),
    queue_size: z.int().min(0).nullable().meta({ description: "Redis' list length; null when Redis did not answer (PostgreSQL's numbers still stand)" }),
    dlq_size: z.int().min(0).nullable(),
    workers: z.int().min(0),
    by_status: z.record(z.enum(STATUSES), z.int().min(0)),
  })
  .meta({ id: 'Stats' });

export type Stats = z.infer<typeof statsJsonSchema>;
