import { z } from 'zod';
import { CHANNELS, STATUSES } from './notification.ts';
import { uuidSchema } from './uuid.ts';

/** A fan-out as the API shows it; the OpenAPI document is generated from this schema. */
export const fanoutJsonSchema = z
  .object({
    fanout_id: uuidSchema,
    topic: z.string().nullable().meta({ description: 'null for a list of `user_ids`' }),
    type: z.enum(CHANNELS),
    status: z.enum(['RUNNING', 'DONE']),
    created_count: z.int().min(0),
    counts: z.partialRecord(z.enum(STATUSES), z.int().min(0)).meta({ description: "the fan-out's notifications by status" }),
    created_at: z.iso.datetime(),
    finished_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Fanout' });

export type FanoutJson = z.infer<typeof fanoutJsonSchema>;

/** A fan-out to a list of users, answered with every notification it created. */
export const fanoutWithMembersJsonSchema = fanoutJsonSchema
  .extend({
    notifications: z.array(z.object({ id: uuidSchema, user_id: z.string(), status: z.enum(STATUSES) })),
  })
  .meta({ id: 'FanoutWithNotifications' });

export type FanoutWithMembersJson = z.infer<typeof fanoutWithMembersJsonSchema>;
