import type { Hook } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ValidationError } from '../../domain/errors.ts';

/** A zod-openapi hook that throws the API's ValidationError for an input that failed its declared schema. */
export type InputRefusal = Hook<unknown, any, any, undefined>;

/**
 * The app's default: a path or query that fails its declared schema is refused with the API's
 * 400, `invalid_request`, naming the first field and listing every one in `details`.
 */
export const refuseInvalid: InputRefusal = (result) => {
  if (result.success) return;
  const details = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const first = details[0]!;
  throw new ValidationError(`invalid ${result.target}: ${first.path || result.target}: ${first.message}`, 'invalid_request', details);
};

/**
 * A route's own wording of the refusal: `explain` re-reads the input with the route's parser,
 * which throws the route's ValidationError (`"x" is not a notification id`); should it not, the
 * default refusal stands.
 */
export function refuseAs(explain: (c: Context<any, any, any>) => unknown): InputRefusal {
  return (result, c) => {
    if (result.success) return;
    explain(c);
    refuseInvalid(result, c);
  };
}
