import { z } from 'zod';

/** A notification, fan-out, replay or API key id: a UUID in its usual 8-4-4-4-12 hex form. */
export const uuidSchema = z.guid();

/** True when `value` is a UUID: the one test for ids that come from outside (paths, queue entries, scripts). */
export function isUuid(value: string): boolean {
  return uuidSchema.safeParse(value).success;
}
