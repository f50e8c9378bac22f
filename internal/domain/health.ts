import { z } from 'zod';

/** `GET /healthz`: the process answers. */
export const livenessJsonSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

export type Liveness = z.infer<typeof livenessJsonSchema>;

const upDown = z.enum(['up', 'down']);

/** `GET /readyz`, 200 or 503: whether this process should get traffic, and why not. */
export const readinessJsonSchema = z
  .object({ status: z.enum(['ready', 'unavailable']), postgres: upDown, redis: upDown, draining: z.boolean() })
  .meta({ id: 'Readiness' });

export type Readiness = z.infer<typeof readinessJsonSchema>;
