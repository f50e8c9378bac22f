import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { isStorableText } from '../storableText.ts';
import { topicKeySchema } from '../topic.ts';

const idSchema = z.guid();

/** A path segment that must be a UUID (a notification or fan-out id). */
export function uuidParam(value: string, what: string): string {
  if (!idSchema.safeParse(value).success) {
    throw new ValidationError(`"${value.slice(0, 64)}" is not a ${what} id (a UUID)`, 'invalid_id');
  }
  return value;
}

/** A user id in a path: any text PostgreSQL can store, up to 255 characters. */
export function userIdParam(value: string): string {
  if (value.length === 0 || value.length > 255 || !isStorableText(value)) {
    throw new ValidationError(
      'user id must be 1 to 255 characters without NUL (U+0000) or unpaired surrogates',
      'invalid_request',
    );
  }
  return value;
}

export function topicParam(value: string): string {
  const parsed = topicKeySchema.safeParse(value);
  if (!parsed.success || parsed.data !== value) {
    throw new ValidationError(`"${value.slice(0, 64)}" is not a topic key: 1 to 200 letters, digits and _ . : @ -`, 'invalid_request');
  }
  return value;
}
