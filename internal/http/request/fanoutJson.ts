import { z } from 'zod';
import type { FanoutMember, FanoutView } from '../../service/fanoutService.ts';
import { CHANNELS, STATUSES } from '../../domain/notification.ts';
import { uuidSchema } from '../../domain/uuid.ts';

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

/** A fan-out as the API shows it: what it sends, how far it got, where its notifications are. */
export function fanoutJson({ fanout, counts }: FanoutView): FanoutJson {
  return {
    fanout_id: fanout.id,
    topic: fanout.topic,
    type: fanout.type,
    status: fanout.status,
    created_count: fanout.created_count,
    counts,
    created_at: fanout.created_at.toISOString(),
    finished_at: fanout.finished_at?.toISOString() ?? null,
  };
}

/** A list of users' fan-out, created in one transaction: its notifications are all known, counted here. */
export function fanoutWithMembersJson(fanout: FanoutView['fanout'], members: FanoutMember[]): FanoutWithMembersJson {
  const counts: FanoutView['counts'] = {};
  for (const m of members) counts[m.status] = (counts[m.status] ?? 0) + 1;
  return { ...fanoutJson({ fanout, counts }), notifications: members };
}
