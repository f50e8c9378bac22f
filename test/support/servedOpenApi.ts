import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { expect } from 'vitest';

/**
 * Settings that switch on every optional part of the API (the end users' inbox and its example
 * page), so that every route is registered and documented.
 */
export function everyRouteEnv(inboxSecret: string): Record<string, string> {
  return { INBOX_JWT_SECRET: inboxSecret, INBOX_DEV_PAGE: 'true' };
}

/** One declaration in the app's OpenAPI registry: a route with its zod schemas, or a component. */
export type RouteDefinition = { type: 'route'; route: RouteConfig } | { type: string; route?: undefined };

/**
 * The document the app serves at /openapi.json, and the declarations it was generated from (the
 * zod schemas themselves, which a test can parse answers with).
 */
export async function servedOpenApi(app: {
  request(path: string): Promise<Response>;
  routes: OpenAPIHono;
}): Promise<{ document: unknown; definitions: RouteDefinition[] }> {
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  const registry = app.routes.openAPIRegistry as unknown as { definitions: RouteDefinition[] };
  return { document: await res.json(), definitions: registry.definitions };
}
