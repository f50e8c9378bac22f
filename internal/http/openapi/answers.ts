import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { errorBodySchema } from '../errorHandler.ts';
import { MAX_BODY_BYTES } from '../request/jsonBody.ts';


/** The error statuses the API answers; each route documents those it can give. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 413 | 415 | 422 | 429 | 503;

/** What each error status means anywhere in the API; a route adds what it means there. */
const ERROR_MEANING: Record<ErrorStatus, string> = {
  400: 'the request is invalid; `code` says how (`invalid_request` with `details` per field, `malformed_json`, `invalid_id`, ...)',
  401: 'no credentials, or unknown, revoked or expired ones (`unauthorized`)',
  403: "the API key lacks this route's scope (`forbidden`)",
  404: 'not found (`not_found`)',
  413: `the body is over ${MAX_BODY_BYTES} bytes (\`payload_too_large\`), refused before it is read whole`,
  415: 'the body is not sent as `application/json` (`unsupported_media_type`)',
  422: 'the Idempotency-Key was used before with a different body (`idempotency_key_reused`)',
  429: 'too many requests (`rate_limited`); wait `Retry-After` seconds',
  503: 'PostgreSQL did not answer within REQUEST_TIMEOUT_MS (`unavailable`); nothing was stored, retry after `Retry-After` seconds',
};

const RETRY_AFTER = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' as const } } };
const WWW_AUTHENTICATE = { 'WWW-Authenticate': { description: '`Bearer`', schema: { type: 'string' as const } } };

/** An error answer: the one error body, what the status means, and what it means on this route. */
export function errorAnswer(status: ErrorStatus, note?: string): ResponseConfig {
  return {
    description: note ? `${ERROR_MEANING[status]}; ${note}` : ERROR_MEANING[status],
    headers: status === 429 || status === 503 ? RETRY_AFTER : status === 401 ? WWW_AUTHENTICATE : undefined,
    content: { 'application/json': { schema: errorBodySchema } },
  };
}

/** A JSON answer built from `schema`. */
export function json(schema: z.ZodType, description: string, headers?: ResponseConfig['headers']): ResponseConfig {
  return { description, headers, content: { 'application/json': { schema } } };
}

/** A page or a text answer (HTML, Prometheus' format, an event stream). */
export function text(mediaType: string, description: string): ResponseConfig {
  return { description, content: { [mediaType]: { schema: z.string() } } };
}

/** A required JSON request body validated by `schema`. */
export function jsonBody<S extends z.ZodType>(schema: S) {
  return { required: true, content: { 'application/json': { schema } } };
}

/** The `Location` header of an answer that created something. */
export const location = (what: string) => ({ Location: { description: `the ${what}'s URL`, schema: { type: 'string' as const } } });
