import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { scopeForMethod } from '../middleware/apiKeyAuth.ts';
import { limitBody } from '../request/jsonBody.ts';
import { errorAnswer, type ErrorStatus } from './answers.ts';

type Method = 'get' | 'post' | 'put' | 'delete';
type Responses = RouteConfig['responses'];
type Notes = Partial<Record<ErrorStatus, string | undefined>>;

/**
 * One route as its module declares it: its success answers in `responses`, its own error statuses
 * (and what they mean there) in `errors`; who may call it adds the rest (see the builders below).
 */
export interface Operation<M extends Method, P extends string, R extends RouteConfig['request']> {
  method: M;
  path: P;
  tag: string;
  summary: string;
  description?: string;
  request?: R;
  responses: Responses;
  errors?: Notes;
  /** Runs before the route's validators, e.g. a WebSocket upgrade (a body's limit is added by itself). */
  middleware?: MiddlewareHandler[];
}

/** Who may call a group of routes, what that adds to the description, and the errors it brings. */
interface Access {
  security: NonNullable<RouteConfig['security']>;
  note?: string;
  errors: Notes;
}

/** What every route with a JSON body can answer besides its own: the body is invalid, too large, or not JSON. */
const BODY_ERRORS: Notes = { 400: undefined, 413: undefined, 415: undefined };

function declare<M extends Method, P extends string, R extends RouteConfig['request']>(access: Access, op: Operation<M, P, R>) {
  const withBody = op.request?.body !== undefined;
  const own: Notes = { ...(withBody ? BODY_ERRORS : {}), ...op.errors };
  const errors: Responses = {};
  const statuses = new Set([...Object.keys(access.errors), ...Object.keys(own)].map(Number) as ErrorStatus[]);
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const notes = [own[status], access.errors[status]].filter((n) => n !== undefined);
    errors[status] = errorAnswer(status, notes.join('; ') || undefined);
  }
  return createRoute({
    method: op.method,
    path: op.path,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, access.note].filter(Boolean).join('\n\n') || undefined,
    security: access.security,
    request: op.request as R,
    responses: { ...op.responses, ...errors },
    // A body over MAX_BODY_BYTES is refused by its declared length before anything else reads it.
    middleware: withBody ? [limitBody, ...(op.middleware ?? [])] : op.middleware,
  });
}

/** A producer's route: an API key with `read` for GET, `send` otherwise; rate limited per key. */
export function producerRoute<M extends Method, P extends string, R extends RouteConfig['request']>(op: Operation<M, P, R>) {
  const scope = scopeForMethod(op.method.toUpperCase());
  return declare(
    {
      security: [{ apiKey: [scope] }],
      note: `Needs an API key with the \`${scope}\` scope.`,
      errors: { 401: undefined, 403: undefined, 429: 'RATE_LIMIT_PER_SECOND per API key', 503: undefined },
    },
    op,
  );
}

/** An operator's route: an API key with the admin scope. */
export function operatorRoute<M extends Method, P extends string, R extends RouteConfig['request']>(op: Operation<M, P, R>) {
  return declare(
    { security: [{ apiKey: ['admin'] }], note: 'Needs an API key with the `admin` scope.', errors: { 401: undefined, 403: undefined, 503: undefined } },
    op,
  );
}

/** An end user's route: their inbox token, in the header or, where `viaQuery`, in the URL. */
export function endUserRoute<M extends Method, P extends string, R extends RouteConfig['request']>(op: Operation<M, P, R>, viaQuery = false) {
  return declare(
    {
      security: viaQuery ? [{ inboxToken: [] }, { inboxTokenQuery: [] }] : [{ inboxToken: [] }],
      note: `Takes the end user's inbox token${viaQuery ? ' (in the URL as `access_token` where headers cannot be set)' : ''}; reaches only that user's items.`,
      errors: { 401: undefined, 404: 'also when the inbox API is off (INBOX_JWT_SECRET unset)', 429: 'RATE_LIMIT_IP_PER_SECOND per client address', 503: undefined },
    },
    op,
  );
}

/** A route anyone may call; `rateLimited` ones count per client address. */
export function publicRoute<M extends Method, P extends string, R extends RouteConfig['request']>(op: Operation<M, P, R>, rateLimited: boolean) {
  return declare({ security: [], errors: rateLimited ? { 429: 'RATE_LIMIT_IP_PER_SECOND per client address' } : {} }, op);
}
