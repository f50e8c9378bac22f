import { z } from 'zod';
import { ValidationError } from '../../domain/errors.ts';
import { isStorableText, UNSTORABLE_MESSAGE } from '../../domain/storableText.ts';
import { topicKeySchema } from '../../domain/topic.ts';
import { isUuid, uuidSchema } from '../../domain/uuid.ts';
import { refuseAs } from './invalidInput.ts';

/** A user id in a path: any text PostgreSQL can store, up to 255 characters, taken as it is (not trimmed). */
const userIdPathSchema = z
  .string()
  .min(1)
  .max(255)
  .refine(isStorableText, UNSTORABLE_MESSAGE)
  .meta({ description: "the producer's own identifier for the user (URL-encoded)" });

/** `{id}`: a notification's or a fan-out's id. */
export const idParams = z.object({ id: uuidSchema.meta({ description: 'a UUID' }) });
/** `{userId}`. */
export const userParams = z.object({ userId: userIdPathSchema });
/** `{topic}`: a topic key. */
export const topicParams = z.object({ topic: topicKeySchema });

/** A path segment that must be a UUID (a notification or fan-out id). */
function uuidParam(value: string, what: string): string {
  if (!isUuid(value)) {
    throw new ValidationError(`"${value.slice(0, 64)}" is not a ${what} id (a UUID)`, 'invalid_id');
  }
  return value;
}

/** A user id in a path: any text PostgreSQL can store, up to 255 characters. */
export function userIdParam(value: string): string {
  if (!userIdPathSchema.safeParse(value).success) {
    throw new ValidationError(
      'user id must be 1 to 255 characters without NUL (U+0000) or unpaired surrogates',
      'invalid_request',
    );
  }
  return value;
}

/** A topic key in a path; unlike a body's, it is not trimmed: the key must be exactly what was sent. */
export function topicParam(value: string): string {
  const parsed = topicKeySchema.safeParse(value);
  if (!parsed.success || parsed.data !== value) {
    throw new ValidationError(`"${value.slice(0, 64)}" is not a topic key: 1 to 200 letters, digits and _ . : @ -`, 'invalid_request');
  }
  return value;
}

/** The refusal of a bad `{id}`, worded for `what` it names. */
export const refuseId = (what: string) => refuseAs((c) => uuidParam(c.req.param('id') ?? '', what));
/** The refusal of a bad `{userId}`. */
export const refuseUserId = refuseAs((c) => userIdParam(c.req.param('userId') ?? ''));
/** The refusal of a bad `{topic}`. */
export const refuseTopic = refuseAs((c) => topicParam(c.req.param('topic') ?? ''));
