import { z } from 'zod';

/** `GET /admin/throughput`: notifications created, sent and failed per minute; the OpenAPI document is generated from this schema. */
export const throughputJsonSchema = z
  .object({
    minutes: z.int().min(1),
    buckets: z
      .array(
        z.object({
          minute: z.iso.datetime().meta({ description: 'the minute, truncated: counts are for [minute, minute + 1 min)' }),
          created: z.int().min(0).meta({ description: 'notifications created in the minute' }),
          sent: z.int().min(0).meta({ description: 'notifications SENT in the minute' }),
          failed: z.int().min(0).meta({ description: 'notifications that became FAILED in the minute and are FAILED still (a replayed one leaves the count)' }),
        }),
      )
      .meta({ description: 'one per minute, oldest first; the last is the current minute, so far' }),
  })
  .meta({ id: 'Throughput' });

export type ThroughputJson = z.infer<typeof throughputJsonSchema>;
