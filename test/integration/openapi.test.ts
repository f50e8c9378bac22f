import { randomUUID } from 'node:crypto';
import type { ResponseConfig, RouteConfig, ZodMediaTypeObject } from '@asteasolutions/zod-to-openapi';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { everyRouteEnv, servedOpenApi, type RouteDefinition } from '../support/servedOpenApi.ts';
import { insertPending, useTestApi } from './helpers.ts';

const INBOX_SECRET = 'openapi-test-secret-0123456789abcdef';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;

interface Document {
  openapi: string;
  info: { title: string; version: string; description?: string };
  tags: { name: string }[];
  webhooks?: Record<string, unknown>;
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}
interface Operation {
  summary?: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean }[];
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}

/** `GET /users/:userId` as OpenAPI writes it: `GET /users/{userId}`. */
const openApiForm = (method: string, path: string) => `${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`;

/** The routes Hono answers, less its middlewares (method ALL) and HEAD, which it derives from GET. */
function servedRoutes(app: Pick<Hono, 'routes'>): Set<string> {
  return new Set(app.routes.filter((r) => r.method !== 'ALL' && r.method !== 'HEAD').map((r) => openApiForm(r.method, r.path)));
}

function documentedRoutes(doc: Document): Set<string> {
  const routes = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) if (item[method]) routes.add(`${method.toUpperCase()} ${path}`);
  }
  return routes;
}

const minus = (a: Set<string>, b: Set<string>) => [...a].filter((x) => !b.has(x)).sort();

/** The declarations the document is generated from, as the app has them. */
let definitions: RouteDefinition[];

/** The route as declared: its zod schemas, not their JSON Schema rendering. */
function registeredRoute(method: string, path: string): RouteConfig {
  for (const d of definitions) {
    if (d.route && d.route.method === method && d.route.path === path) return d.route;
  }
  throw new Error(`${method.toUpperCase()} ${path} is not documented`);
}

/** The schema of a media type as registered (a reference object has none). */
function schemaOf(media: ZodMediaTypeObject | { $ref: string } | undefined): unknown {
  return media && 'schema' in media ? media.schema : undefined;
}

function isZod(schema: unknown): schema is z.ZodType {
  return typeof schema === 'object' && schema !== null && 'safeParse' in schema;
}

/**
 * Asserts that `res` has the status the test expects, that the status is documented for the route,
 * and that the body passes the zod schema registered for that status and media type. Returns the
 * parsed JSON (or the text of another media type).
 */
async function expectDocumented(res: Response, method: string, path: string, status: number): Promise<unknown> {
  const name = `${method.toUpperCase()} ${path} ${res.status}`;
  expect(res.status, `${method.toUpperCase()} ${path}`).toBe(status);
  const response = registeredRoute(method, path).responses[String(res.status)] as ResponseConfig | undefined;
  expect(response, `${name} is answered but not documented`).toBeDefined();
  const mediaTypes = Object.keys(response!.content ?? {});
  if (mediaTypes.length === 0) {
    expect(await res.text(), `${name} documents no body`).toBe('');
    return undefined;
  }
  const type = res.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
  expect(mediaTypes, `${name}: content-type ${type}`).toContain(type);
  if (type !== 'application/json') return res.text();
  const schema = schemaOf(response!.content![type]);
  const body: unknown = await res.json();
  expect(isZod(schema), `${name}: a zod schema is registered`).toBe(true);
  const result = (schema as z.ZodType).safeParse(body);
  expect(result.success ? [] : result.error.issues, `${name}: ${JSON.stringify(body).slice(0, 500)}`).toEqual([]);
  return body;
}

describe('the OpenAPI document', () => {
  const db = useTestDatabase();
  /** Every optional part on (metrics, the inbox, the example page), so every route is registered. */
  const api = useTestApi(db, { env: everyRouteEnv(INBOX_SECRET) });
  let doc: Document;

  beforeAll(async () => {
    const served = await servedOpenApi(api.app);
    doc = served.document as Document;
    definitions = served.definitions;
  });

  it('documents every route the app serves, and no route it does not serve', () => {
    const served = servedRoutes(api.app.routes);
    const documented = documentedRoutes(doc);
    expect(minus(served, documented), 'served but not declared with createRoute (see internal/http/openapi/serveRoute.ts)').toEqual([]);
    expect(minus(documented, served), 'documented but not served').toEqual([]);
    expect(served.size).toBeGreaterThan(25);
  });

  it('notices a route added without documentation', () => {
    const extended = new Hono().route('/', api.app.routes);
    extended.get('/notifications/:id/undocumented', (c) => c.body(null, 204));
    expect(minus(servedRoutes(extended), documentedRoutes(doc))).toContain('GET /notifications/{id}/undocumented');
  });

  it('is a well-formed OpenAPI 3.1 document', () => {
    expect(doc.openapi).toBe('3.1.0');
    const schemes = Object.keys(doc.components.securitySchemes ?? {});
    for (const [path, item] of Object.entries(doc.paths)) {
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const name = `${method.toUpperCase()} ${path}`;
        expect(op.summary, `${name} has a summary`).toBeTruthy();
        const statuses = Object.keys(op.responses ?? {});
        expect(statuses.some((s) => /^[12]\d\d$/.test(s)), `${name} documents its success`).toBe(true);
        // Each error answer carries the one error body; /readyz's 503 is its readiness report instead.
        for (const status of statuses.filter((s) => /^[45]\d\d$/.test(s) && !(path === '/readyz' && s === '503'))) {
          expect(op.responses![status]!.content?.['application/json']?.schema?.$ref, `${name} ${status}`).toBe('#/components/schemas/Error');
        }
        // Every `{param}` of the path is declared as a required path parameter, and no other.
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
        expect(declared.map((p) => p.name).sort(), `${name} path parameters`).toEqual(templated);
        expect(declared.every((p) => p.required === true), `${name} path parameters are required`).toBe(true);
        expect(op.security, `${name} says who may call it (an empty list: anyone)`).toBeDefined();
        for (const requirement of op.security!) for (const scheme of Object.keys(requirement)) expect(schemes).toContain(scheme);
      }
    }
    // Every reference resolves.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/(\w+)\/([^"]+)"/g)];
    for (const [, kind, name] of refs) expect(doc.components[kind!]?.[name!], `#/components/${kind}/${name}`).toBeDefined();
  });

  it('describes the API as a whole: title, tags, who may call it, the webhook, schemas by name', () => {
    expect(doc.info.title).toBe('herald');
    expect(doc.info.description).toContain('not_found');
    expect(doc.tags.map((t) => t.name)).toEqual(['Notifications', 'Recipients', 'Topics', 'Inbox', 'Operations', 'Health', 'Documentation', 'Development']);
    expect(Object.keys(doc.components.securitySchemes ?? {}).sort()).toEqual(['apiKey', 'inboxToken', 'inboxTokenQuery']);
    expect(Object.keys(doc.webhooks ?? {})).toEqual(['notification']);
    // Every schema given an id with `.meta({ id })` is a named component, referred to where it is used.
    for (const id of ['Notification', 'CreateNotification', 'Fanout', 'FanoutWithNotifications', 'Error', 'InboxPage', 'Stats', 'Throughput', 'DevToken']) {
      expect(doc.components.schemas?.[id], id).toBeDefined();
    }
  });

  describe('real answers match what is documented for them', () => {
    /**
     * Sends `method url` (a JSON body when one is given, or a string sent as it is) and checks the
     * answer against what the route `path` documents for `status`.
     */
    async function call(status: number, method: string, path: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
      const init: RequestInit = { method: method.toUpperCase(), headers };
      if (body !== undefined) {
        init.headers = { 'content-type': 'application/json', ...headers };
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      return expectDocumented(await api.app.request(url, init), method, path, status);
    }

    it('notifications and fan-outs', async () => {
      const one = { user_id: 'doc-alice', type: 'IN_APP', title: 'Hi', body: 'Hello' };
      const created = (await call(201, 'post', '/notifications', '/notifications', one)) as { id: string };
      const list = { user_ids: ['doc-alice', 'doc-bob'], type: 'IN_APP', body: 'Hello' };
      const fanout = (await call(201, 'post', '/notifications', '/notifications', list)) as { fanout_id: string; notifications: unknown[] };
      expect(fanout.notifications).toHaveLength(2);
      await call(202, 'post', '/notifications', '/notifications', { topic: 'doc-topic', type: 'IN_APP', body: 'Hello' });
      const key = { 'idempotency-key': `doc-${randomUUID()}` };
      await call(201, 'post', '/notifications', '/notifications', { ...one, body: 'once' }, key);
      await call(200, 'post', '/notifications', '/notifications', { ...one, body: 'once' }, key);
      await call(422, 'post', '/notifications', '/notifications', { ...one, body: 'twice' }, key);
      await call(400, 'post', '/notifications', '/notifications', { type: 'IN_APP' });
      await call(400, 'post', '/notifications', '/notifications', '{not json');
      await call(415, 'post', '/notifications', '/notifications', undefined, { 'content-type': 'text/plain' });

      await call(200, 'get', '/notifications/{id}', `/notifications/${created.id}`);
      await call(400, 'get', '/notifications/{id}', '/notifications/not-a-uuid');
      await call(404, 'get', '/notifications/{id}', `/notifications/${randomUUID()}`);
      await call(200, 'get', '/notifications/{id}/attempts', `/notifications/${created.id}/attempts`);
      await call(404, 'get', '/notifications/{id}/attempts', `/notifications/${randomUUID()}/attempts`);
      await call(200, 'get', '/fanouts/{id}', `/fanouts/${fanout.fanout_id}`);
      await call(404, 'get', '/fanouts/{id}', `/fanouts/${randomUUID()}`);
    });

    it('recipients, topics and the producer view of an inbox', async () => {
      await call(200, 'put', '/users/{userId}', '/users/doc-carol', { email: 'carol@example.com', locale: 'en' });
      await call(400, 'put', '/users/{userId}', '/users/doc-carol', { email: 'not an address' });
      await call(200, 'get', '/users/{userId}', '/users/doc-carol');
      await call(404, 'get', '/users/{userId}', '/users/doc-nobody');
      await call(200, 'put', '/users/{userId}/preferences', '/users/doc-carol/preferences', { opted_out: ['SMS'] });
      await call(200, 'get', '/users/{userId}/preferences', '/users/doc-carol/preferences');
      await call(200, 'get', '/users/{userId}/inbox', '/users/doc-carol/inbox?limit=5');
      await call(400, 'get', '/users/{userId}/inbox', '/users/doc-carol/inbox?limit=0');

      await call(200, 'put', '/topics/{topic}/subscribers', '/topics/doc-topic/subscribers', { user_ids: ['doc-carol'] });
      await call(200, 'delete', '/topics/{topic}/subscribers', '/topics/doc-topic/subscribers', { user_ids: ['doc-carol'] });
      await call(200, 'get', '/topics/{topic}', '/topics/doc-topic');
      await call(400, 'get', '/topics/{topic}', '/topics/no%20spaces');
    });

    it("the end user's inbox and the example page's token", async () => {
      const auth = { authorization: `Bearer ${await issueToken('doc-dave', INBOX_SECRET, 60)}` };
      await call(200, 'get', '/inbox', '/inbox?limit=10', undefined, auth);
      await call(401, 'get', '/inbox', '/inbox');
      await call(200, 'get', '/inbox/unread_count', '/inbox/unread_count', undefined, auth);
      await call(200, 'post', '/inbox/read_all', '/inbox/read_all', undefined, auth);
      await call(404, 'post', '/inbox/{id}/read', `/inbox/${randomUUID()}/read`, undefined, auth);
      await call(400, 'post', '/inbox/{id}/archive', '/inbox/nope/archive', undefined, auth);
      // The live stream stays open: its status and media type are checked, then it is dropped.
      const stream = await api.app.request('/inbox/stream?since=0', { headers: auth });
      expect(stream.status).toBe(200);
      expect(Object.keys((registeredRoute('get', '/inbox/stream').responses['200'] as ResponseConfig).content ?? {})).toEqual([stream.headers.get('content-type')?.split(';')[0]]);
      await stream.body?.cancel();
      await call(400, 'get', '/inbox/stream', '/inbox/stream?since=-1', undefined, auth);
      await call(404, 'get', '/inbox/ws', '/inbox/ws', undefined, auth);
      await call(400, 'get', '/inbox/ws', '/inbox/ws?since=x', undefined, auth);
      await call(200, 'post', '/dev/token', '/dev/token', { user_id: 'doc-dave' });
      await call(200, 'get', '/dev/inbox', '/dev/inbox');
    });

    it('operations, health and the documentation itself', async () => {
      const failed = await insertPending(db.sql, { user_id: 'doc-erin' });
      await db.sql`update notifications set status = 'FAILED', error_reason = 'doc test' where id = ${failed.id}`;
      const page = (await call(200, 'get', '/admin/dead-letters', '/admin/dead-letters?limit=1')) as { items: unknown[] };
      expect(page.items).toHaveLength(1);
      await call(400, 'get', '/admin/dead-letters', '/admin/dead-letters?limit=x');
      await call(200, 'post', '/admin/dead-letters/replay', '/admin/dead-letters/replay', { all: true, dry_run: true });
      await call(400, 'post', '/admin/dead-letters/replay', '/admin/dead-letters/replay', { dry_run: true });
      await call(200, 'get', '/stats', '/stats');
      await call(200, 'get', '/metrics', '/metrics');
      await call(200, 'get', '/healthz', '/healthz');
      await call(200, 'get', '/readyz', '/readyz');
      await call(200, 'get', '/openapi.json', '/openapi.json');
      expect(await call(200, 'get', '/docs', '/docs')).toContain('docs/docs.js');
      expect(await call(200, 'get', '/docs/docs.js', '/docs/docs.js')).toContain('openapi.json');
      await call(200, 'get', '/docs/swagger-ui.css', '/docs/swagger-ui.css');
      await call(200, 'get', '/docs/swagger-ui-bundle.js', '/docs/swagger-ui-bundle.js');
    });
  });
});
