import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { scopeForMethod } from '../middleware/apiKeyAuth.ts';
import { limitBody } from '../request/jsonBody.ts';
import { errorAnswer, type ErrorStatus } from './answers.ts';

type Method = 'get' | 'post' | 'put' | 'delete';
type Request = RouteConfig['request'];
type Responses = RouteConfig['responses'];
type Notes = Partial<Record<ErrorStatus, string | undefined>>;

/**
 * One route as its module declares it, under its group's path: its success answers in
 * `responses`, its own error statuses (and what they mean there) in `errors`; the group adds its
 * tag and who may call it, with the errors that brings.
 */
export interface Operation<R extends Request> {
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

function declare<M extends Method, P extends string, R extends Request>(method: M, path: P, tag: string, access: Access, op: Operation<R>) {
  const withBody = op.request?.body !== undefined;
  return createRoute({
    method,
    path,
    tags: [tag],
    summary: op.summary,
    description: [op.description, access.note].filter(Boolean).join('\n\n') || undefined,
    security: access.security,
    request: op.request as R,
    responses: { ...op.responses, ...errorAnswers(access.errors, { ...(withBody ? BODY_ERRORS : {}), ...op.errors }) },
    // A body over MAX_BODY_BYTES is refused by its declared length before anything else reads it.
    middleware: withBody ? [limitBody, ...(op.middleware ?? [])] : op.middleware,
  });
}

/** Each error status the access or the route brings, in order, with the route's note first. */
function errorAnswers(access: Notes, own: Notes): Responses {
  const answers: Responses = {};
  const statuses = new Set([...Object.keys(access), ...Object.keys(own)].map(Number) as ErrorStatus[]);
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const notes = [own[status], access[status]].filter((n) => n !== undefined);
    answers[status] = errorAnswer(status, notes.join('; ') || undefined);
  }
  return answers;
}

/**
 * The routes of one module, which share a tag and who may call them: `group.get(path, operation)`
 * declares `GET path` (relative to where the module is mounted) as createRoute would.
 */
function routeGroup(tag: string, access: (method: Method) => Access) {
  const method =
    <M extends Method>(m: M) =>
    <P extends string, R extends Request>(path: P, op: Operation<R>) =>
      declare(m, path, tag, access(m), op);
  return { get: method('get'), post: method('post'), put: method('put'), delete: method('delete') };
}

/** Why a route that takes an API key answers 429. */
const KEYED_RATE_LIMITS = 'RATE_LIMIT_PER_SECOND per API key, or AUTH_FAILURES_PER_MINUTE failed key checks per client address';

/** Producers' routes: an API key with `read` for GET, `send` otherwise; rate limited per key. */
export function producerRoutes(tag: string) {
  return routeGroup(tag, (method) => {
    const scope = scopeForMethod(method.toUpperCase());
    return {
      security: [{ apiKey: [scope] }],
      note: `Needs an API key with the \`${scope}\` scope.`,
      errors: { 401: undefined, 403: undefined, 429: KEYED_RATE_LIMITS, 503: undefined },
    };
  });
}

/** Operators' routes: an API key with the admin scope. */
export function operatorRoutes(tag: string) {
  const access: Access = {
    security: [{ apiKey: ['admin'] }],
    note: 'Needs an API key with the `admin` scope.',
    errors: { 401: undefined, 403: undefined, 429: KEYED_RATE_LIMITS, 503: undefined },
  };
  return routeGroup(tag, () => access);
}

/** End users' routes: their inbox token in the header or, where `tokenInUrl`, in the URL. */
export function endUserRoutes(tag: string, { tokenInUrl }: { tokenInUrl: boolean }) {
  const access: Access = {
    security: tokenInUrl ? [{ inboxToken: [] }, { inboxTokenQuery: [] }] : [{ inboxToken: [] }],
    note: `Takes the end user's inbox token${tokenInUrl ? ' (in the URL as `access_token` where headers cannot be set)' : ''}; reaches only that user's items.`,
    errors: { 401: undefined, 404: 'also when the inbox API is off (INBOX_JWT_SECRET unset)', 429: 'RATE_LIMIT_IP_PER_SECOND per client address', 503: undefined },
  };
  return routeGroup(tag, () => access);
}

/** Routes anyone may call; `rateLimited` ones count per client address. */
export function publicRoutes(tag: string, { rateLimited }: { rateLimited: boolean }) {
  const access: Access = { security: [], errors: rateLimited ? { 429: 'RATE_LIMIT_IP_PER_SECOND per client address' } : {} };
  return routeGroup(tag, () => access);
}
