import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

/** Requests larger than this are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new HTTPException(413, { message: `request body is larger than ${MAX_BODY_BYTES} bytes` });
  },
});

/** Reads a JSON body and validates it: 415 when it is not JSON, 400 when malformed or invalid. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new HTTPException(415, { message: 'send the body as JSON with Content-Type: application/json' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await c.req.text());
  } catch {
    throw new ValidationError('request body is not valid JSON', 'malformed_json');
  }
  let result: z.ZodSafeParseResult<z.infer<S>>;
  try {
    result = schema.safeParse(parsed);
  } catch {
    // zod's later checks can throw on values built to confuse them ({"length": {"toString": null}}).
    throw new ValidationError('request body has a value of the wrong type', 'invalid_request');
  }
  if (!result.success) {
    const details = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const first = details[0]!;
    throw new ValidationError(`invalid request: ${first.path || 'body'}: ${first.message}`, 'invalid_request', details);
  }
  return result.data;
}
