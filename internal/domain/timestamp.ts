import { z } from 'zod';

/**
 * Whether PostgreSQL's timestamptz can read an RFC 3339 time: it has no year 0 and takes offsets
 * up to ±15:59, while RFC 3339 allows both.
 */
function isStorable(text: string): boolean {
  if (Number(text.slice(0, 4)) < 1) return false;
  const offset = /([+-])(\d{2}):?(\d{2})$/.exec(text);
  return !offset || Number(offset[2]) <= 15;
}

/** An RFC 3339 time with an offset, kept as text (to the microsecond) and readable by PostgreSQL. */
export const timestampSchema = z.iso
  .datetime({ offset: true })
  .refine(isStorable, 'must be a time from year 0001 to 9999 with an offset within ±15:59');
