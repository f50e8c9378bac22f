import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { ValidationError } from '../../domain/errors.ts';
import { deepNesting, MAX_JSON_DEPTH } from './jsonNesting.ts';
import { nodeRequest, requestHeader } from './nodeRequest.ts';

/** Requests larger than this are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

function tooLarge(): HTTPException {
  return new HTTPException(413, { message: `request body is larger than ${MAX_BODY_BYTES} bytes` });
}

/**
 * Refuses a body over MAX_BODY_BYTES with 413 before it is read whole: at once when its
 * Content-Length says so, else while `readJson` reads it (a chunked body is counted as it comes).
 */
export const limitBody: MiddlewareHandler = async (c, next) => {
  const declared = nodeRequest(c).headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  await next();
};

/** Reads a JSON body and validates it: 415 when it is not JSON, 400 when malformed, nested too deeply or invalid. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = requestHeader(c, 'content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new HTTPException(415, { message: 'send the body as JSON with Content-Type: application/json' });
  }
  let parsed: unknown;
  try {
    const text = await readNodeBody(nodeRequest(c));
    refuseDeepNesting(text);
    parsed = JSON.parse(text);
  } catch (err) {
    if (err instanceof HTTPException || err instanceof ValidationError) throw err;
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

/**
 * Refuses a body nested deeper than MAX_JSON_DEPTH before it is parsed, as the schemas' own depth
 * checks would (400 naming the field), without paying for parsing it first.
 */
function refuseDeepNesting(text: string): void {
  const deep = deepNesting(text, MAX_JSON_DEPTH);
  if (!deep) return;
  const message = `must not nest deeper than ${MAX_JSON_DEPTH} levels`;
  throw new ValidationError(`invalid request: ${deep.field || 'body'}: ${message}`, 'invalid_request', [{ path: deep.field, message }]);
}

/**
 * The body as text, refused with 413 as soon as it passes MAX_BODY_BYTES. Reading then stops
 * without destroying the request, so the 413 can still be written; the server drains or closes
 * what is left once the answer is sent. Decoded as the web `text()` does (UTF-8, a leading BOM
 * dropped, invalid bytes replaced).
 */
function readNodeBody(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    // A client that went away while the request waited (an earlier middleware's await): the
    // request is destroyed already and will emit nothing more.
    if (incoming.destroyed || incoming.readableEnded) {
      reject(new Error('the request body is no longer readable (the client went away)'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        done();
        incoming.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(utf8.decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    // A client that went away before sending the whole body: no 'end' will come.
    const onClose = () => {
      if (!incoming.complete) onError(new Error('the client closed the connection before sending the whole body'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

const utf8 = new TextDecoder('utf-8');
