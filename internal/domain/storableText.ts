import { z } from 'zod';

/** Why PostgreSQL would refuse a text; every text field of the API is checked for it. */
export const UNSTORABLE_MESSAGE =
  'must not contain the NUL character (U+0000) or an unpaired UTF-16 surrogate, which PostgreSQL cannot store';
// With the u flag a well-formed surrogate pair is one code point, so \p{Cs} matches only unpaired halves.
const UNSTORABLE_TEXT = /[\u0000\p{Cs}]/u;
export const isStorableText = (text: string) => !UNSTORABLE_TEXT.test(text);

/** Text PostgreSQL can store, trimmed, 1 to `max` characters. */
export const storableText = (max: number) =>
  z.string().trim().min(1).max(max).refine(isStorableText, UNSTORABLE_MESSAGE);

/** A user id as producers send it: their own identifier for the user, opaque to us. */
export const userIdSchema = storableText(255);
