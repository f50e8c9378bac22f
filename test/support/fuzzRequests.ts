import { sign } from 'hono/jwt';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { fromSchema, requestBody, topicKey, userId } from './fuzzBodies.ts';
import { fromAlphabet, fuzzDateTime, fuzzKey, fuzzString, fuzzUuid, type Random } from './fuzzRandom.ts';

/*
 * Requests for the HTTP fuzz test, generated from the API's own OpenAPI document: for each route its
 * path parameters, query and body (fuzzBodies.ts), valid and not, with odd headers. A request is
 * plain data (`FuzzRequest`) so that a failing one can be printed, shrunk and sent again.
 */

/** The part of JSON Schema the OpenAPI document uses. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
}

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: JsonSchema;
}

interface DocumentOperation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, unknown>;
  security?: Record<string, string[]>[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, DocumentOperation>>;
  components: { schemas: Record<string, JsonSchema> };
}

/** Who a route lets in: a producer's API key, an end user's inbox token, or anyone. */
export type Access = 'apiKey' | 'inboxToken' | 'public';

/** One documented route, as the generators need it. */
export interface FuzzOperation {
  /** `POST /notifications`, as the document names it. */
  name: string;
  method: string;
  path: string;
  params: Parameter[];
  body?: JsonSchema;
  statuses: Set<number>;
  access: Access;
}

export interface FuzzRequest {
  /** The documented route this request was made for. */
  operation: string;
  method: string;
  /** Path and query, encoded as they go on the wire. */
  url: string;
  headers: [string, string][];
  body?: string | Uint8Array<ArrayBuffer>;
  /** False when the path or method was made to miss the route (raw `/`, `..`, another method). */
  onRoute: boolean;
}

export function operationsOf(doc: OpenApiDocument): FuzzOperation[] {
  const operations: FuzzOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const requirement = op.security?.[0] ?? {};
      operations.push({
        name: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        body: op.requestBody?.content['application/json']?.schema,
        statuses: new Set(Object.keys(op.responses).map(Number)),
        access: 'apiKey' in requirement ? 'apiKey' : 'inboxToken' in requirement ? 'inboxToken' : 'public',
      });
    }
  }
  return operations;
}

/** What earlier answers created, so later requests can name it: ids that exist, keys used before. */
export interface FuzzPools {
  notificationIds: string[];
  fanoutIds: string[];
  userIds: string[];
  topics: string[];
  idempotencyKeys: string[];
  /** `next_cursor`s of earlier pages (inbox seqs and dead-letter positions alike). */
  cursors: string[];
  /** Bodies sent with each idempotency key, so a repeat can send the same one. */
  keyedBodies: Map<string, string>;
}

export function emptyPools(): FuzzPools {
  return { notificationIds: [], fanoutIds: [], userIds: [], topics: [], idempotencyKeys: [], cursors: [], keyedBodies: new Map() };
}

const remember = (list: string[], value: unknown, max = 200) => {
  if (typeof value !== 'string' || list.includes(value)) return;
  list.push(value);
  if (list.length > max) list.shift();
};

/** Takes the ids a successful answer names into the pools. */
export function harvest(pools: FuzzPools, body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  const b = body as Record<string, unknown>;
  if (typeof b.id === 'string' && typeof b.status === 'string') remember(pools.notificationIds, b.id);
  remember(pools.fanoutIds, b.fanout_id);
  remember(pools.cursors, b.next_cursor, 50);
  if (typeof b.user_id === 'string') remember(pools.userIds, b.user_id);
  if (typeof b.topic === 'string') remember(pools.topics, b.topic);
  if (Array.isArray(b.notifications)) for (const n of b.notifications) remember(pools.notificationIds, (n as { id?: unknown }).id);
}

/** How the request proves who it is. */
export interface Credentials {
  /** Authorization for producers' and operators' routes; undefined with AUTH_DISABLED. */
  apiKey?: (r: Random) => string | undefined;
  inboxSecret: string;
}

export interface GenerateContext {
  r: Random;
  doc: OpenApiDocument;
  pools: FuzzPools;
  credentials: Credentials;
}

/** A random request for `op`: mostly on its route with parameters and body valid or not. */
export async function generateRequest(ctx: GenerateContext, op: FuzzOperation): Promise<FuzzRequest> {
  const { r } = ctx;
  let onRoute = true;
  let path = op.path;
  for (const param of op.params.filter((p) => p.in === 'path')) {
    const segment = pathSegment(ctx, param);
    onRoute &&= segment.onRoute;
    path = path.replace(`{${param.name}}`, () => segment.text);
  }
  const query = queryString(ctx, op);
  const headers: [string, string][] = [];
  const auth = await authorization(ctx, op);
  if (auth !== undefined) headers.push(['authorization', auth]);
  let method = op.method;
  if (r.chance(0.04)) {
    method = r.pick(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'FOO']);
    onRoute &&= method === op.method;
  }
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  const canHaveBody = method !== 'GET' && method !== 'HEAD';
  if (canHaveBody && (op.body || r.chance(0.2))) {
    const made = requestBody(ctx, op);
    body = made.body;
    if (made.contentType !== undefined) headers.push(['content-type', made.contentType]);
  }
  if (op.name === 'POST /notifications' && r.chance(0.35)) {
    const key = idempotencyKey(ctx);
    headers.push(['idempotency-key', key]);
    // A repeat of an earlier key sends the same body half the time (200), another otherwise (422).
    const earlier = ctx.pools.keyedBodies.get(key);
    if (earlier !== undefined && canHaveBody && r.chance(0.5)) body = earlier;
    else if (typeof body === 'string' && !ctx.pools.keyedBodies.has(key)) ctx.pools.keyedBodies.set(key, body);
    remember(ctx.pools.idempotencyKeys, key, 50);
  } else if (r.chance(0.03)) {
    headers.push(['idempotency-key', idempotencyKey(ctx)]);
  }
  if (r.chance(op.path === '/inbox/stream' ? 0.5 : 0.03)) headers.push(['last-event-id', headerText(r, r.chance(0.4) ? String(r.int(-5, 1e6)) : fuzzString(r, 80))]);
  if (r.chance(0.05)) headers.push(oddHeader(r));
  return { operation: op.name, method, url: query ? `${path}?${query}` : path, headers, body, onRoute };
}

// Path parameters.

function pathSegment(ctx: GenerateContext, param: Parameter): { text: string; onRoute: boolean } {
  const { r, pools } = ctx;
  const valid = (): string => {
    if (param.schema.format === 'uuid') {
      const pool = param.name === 'id' ? [...pools.notificationIds, ...pools.fanoutIds] : [];
      return pool.length > 0 && r.chance(0.7) ? r.pick(pool) : fuzzUuid(r);
    }
    if (param.name === 'userId') return pools.userIds.length > 0 && r.chance(0.6) ? r.pick(pools.userIds) : userId(r);
    if (param.name === 'topic') return pools.topics.length > 0 && r.chance(0.6) ? r.pick(pools.topics) : topicKey(r);
    return fromSchema(ctx, param.schema, 2) as string;
  };
  return r.weighted<{ text: string; onRoute: boolean }>([
    [6, () => ({ text: encodeSegment(valid()), onRoute: true })],
    [3, () => ({ text: encodeSegment(invalidSegment(r, valid)), onRoute: true })],
    [1, () => {
      // Unencoded: `/`, `?`, `#`, `%`, `..` reach the URL parser and the router as they are.
      const raw = r.pick(['', '.', '..', '%', '%zz', '%00', '%ED%A0%80', '%C0%AF', '%2e%2e', 'a/b', 'a?b', 'a#b', 'a\\b', ' ', '%20', valid().toUpperCase(), `${valid()}/`, `{${valid()}}`]);
      return { text: raw, onRoute: false };
    }],
  ]);
}

function invalidSegment(r: Random, valid: () => string): string {
  return r.weighted([
    [4, () => fuzzString(r, 400)],
    [1, () => `${valid()}${r.pick(['\u0000', '\ud800', ' ', 'x', '\udfff'])}`],
    [1, () => valid().slice(0, -1)],
    [1, () => r.pick(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{00000000-0000-0000-0000-000000000000}', '0000000000000000000000000000000', 'g0000000-0000-4000-8000-000000000000'])],
    [1, () => 'x'.repeat(r.pick([255, 256, 201, 200, 5000]))],
  ]);
}

const HEX = '0123456789ABCDEF';
const UNRESERVED = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

/**
 * Percent-encodes a path segment or query part as UTF-8, the way `encodeURIComponent` would, except
 * that a lone surrogate is written as the three bytes it would take (WTF-8) instead of throwing.
 */
export function encodeSegment(text: string, keep: RegExp = UNRESERVED): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!;
    if (code > 0xffff) i++;
    const ch = String.fromCodePoint(code);
    if (code < 0x80 && keep.test(ch)) {
      out += ch;
      continue;
    }
    const bytes =
      code < 0x80 ? [code]
      : code < 0x800 ? [0xc0 | (code >> 6), 0x80 | (code & 63)]
      : code < 0x10000 ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)]
      : [0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)];
    for (const b of bytes) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

// Query strings.

const QUERY_VALUE = /[A-Za-z0-9\-._~!$'()*,;:@/?]/;

function queryString(ctx: GenerateContext, op: FuzzOperation): string {
  const { r } = ctx;
  const pairs: [string, string][] = [];
  for (const param of op.params.filter((p) => p.in === 'query')) {
    if (!r.chance(0.5)) continue;
    pairs.push([param.name, r.chance(0.6) ? queryValue(ctx, param) : fuzzString(r, 300)]);
    if (r.chance(0.05)) pairs.push([param.name, queryValue(ctx, param)]);
  }
  if (op.access === 'inboxToken' && r.chance(0.1)) pairs.push(['access_token', fuzzString(r, 100)]);
  if (r.chance(0.15)) for (let i = r.int(1, 3); i > 0; i--) pairs.push([fuzzKey(r), fuzzString(r, 100)]);
  let query = pairs.map(([k, v]) => `${encodeSegment(k, QUERY_VALUE)}=${encodeSegment(v, QUERY_VALUE)}`).join('&');
  if (r.chance(0.05)) {
    query += r.pick(['&', '&&', '=', '&=x', '&x', '%', '&%zz=1', '&a=%ED%A0%80', '&limit[]=1', '&limit=1&limit=2', `&q=${'x'.repeat(8000)}`, '&since=%00', '&cursor=+1']);
  }
  return query;
}

function queryValue(ctx: GenerateContext, param: Parameter): string {
  const { r } = ctx;
  const s = param.schema;
  if (s.format === 'date-time') return fuzzDateTime(r);
  if (param.name === 'cursor') {
    if (ctx.pools.cursors.length > 0 && r.chance(0.4)) return r.pick(ctx.pools.cursors);
    // A dead-letter cursor is base64url of `time|id`: forged ones carry odd times and ids.
    if (r.chance(0.2)) return Buffer.from(`${fuzzDateTime(r)}|${r.chance(0.8) ? fuzzUuid(r) : fuzzString(r, 40)}`).toString('base64url');
    return r.pick([String(r.int(1, 100)), String(r.int(1, 2 ** 31 - 1)), '2147483648', '9007199254740991', '0', '-1', '1.5', 'MjAyNA', '', 'abc']);
  }
  if (s.type === 'integer' || (Array.isArray(s.type) && s.type.includes('integer'))) {
    return r.pick([String(r.int(s.minimum ?? 0, Math.min(s.maximum ?? 1000, 1000))), '0', '-1', '201', '1e2', '0x10', ' 5', '5 ', '1.0', '1.5', '', 'NaN', 'Infinity', '1e400']);
  }
  return String(fromSchema(ctx, s, 1) ?? '');
}


// Authorization.

async function authorization(ctx: GenerateContext, op: FuzzOperation): Promise<string | undefined> {
  const { r } = ctx;
  if (op.access === 'apiKey' && ctx.credentials.apiKey) return ctx.credentials.apiKey(r);
  if (op.access === 'inboxToken') {
    if (r.chance(0.85)) return `Bearer ${await issueToken(inboxUser(ctx), ctx.credentials.inboxSecret, 600)}`;
    return badInboxToken(ctx);
  }
  return r.chance(0.1) ? garbageAuthorization(r) : undefined;
}

function inboxUser(ctx: GenerateContext): string {
  return ctx.pools.userIds.length > 0 && ctx.r.chance(0.7) ? ctx.r.pick(ctx.pools.userIds) : userId(ctx.r);
}

async function badInboxToken(ctx: GenerateContext): Promise<string | undefined> {
  const { r } = ctx;
  const now = Math.floor(Date.now() / 1000);
  const secret = ctx.credentials.inboxSecret;
  return r.weighted<Promise<string | undefined>>([
    [2, async () => garbageAuthorization(r)],
    [1, async () => `Bearer ${await issueToken(inboxUser(ctx), 'another-secret-0123456789abcdef-xyz', 600)}`],
    [1, async () => `Bearer ${await sign({ sub: inboxUser(ctx), exp: now - 10 }, secret, 'HS256')}`],
    [1, async () => `Bearer ${await sign({ sub: inboxUser(ctx), exp: now + 600, nbf: now + 300 }, secret, 'HS256')}`],
    [2, async () => `Bearer ${await sign({ sub: r.pick<unknown>([undefined, '', 42, null, ['a'], { a: 1 }, 'x'.repeat(256), 'a\u0000b', '\ud800', fuzzString(r, 300)]), exp: now + 600 }, secret, 'HS256')}`],
    [1, async () => `Bearer ${await sign({ sub: inboxUser(ctx), exp: now + 600 }, secret, r.pick(['HS384', 'HS512'] as const))}`],
    [1, async () => {
      const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `Bearer ${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: inboxUser(ctx), exp: now + 600 })}.`;
    }],
    [1, async () => undefined],
  ]);
}

/** Authorization headers that are no credentials at all. */
export function garbageAuthorization(r: Random): string {
  return r.weighted([
    [3, () => r.pick(['', 'Bearer', 'Bearer ', 'bearer', 'Bearer  ', 'Basic dXNlcjpwYXNz', 'Bearer a b', 'Bearer a.b.c', 'Bearer ...', 'Bearer e30.e30.', 'Token abc', 'Bearer hk_', 'Bearer null', 'Digest x', 'Bearer \t x'])],
    [2, () => `Bearer ${headerText(r, fuzzString(r, 300))}`],
    [1, () => headerText(r, fuzzString(r, 300))],
    [1, () => `Bearer ${'A'.repeat(r.pick([1000, 8000]))}`],
    [1, () => `Bearer hk_${fromAlphabet(r, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_', 43)}`],
  ]);
}

// Other headers.

/**
 * A header value: `text` as the UTF-8 bytes a client would send, each byte one character (what
 * Node's HTTP parser hands on), without the NUL, CR and LF that no header may hold.
 */
export function headerText(r: Random, text: string): string {
  const latin1 = Buffer.from(text, 'utf8').toString('latin1');
  return latin1.replace(/[\u0000\r\n]/g, () => (r.chance(0.5) ? '' : ' '));
}

function idempotencyKey(ctx: GenerateContext): string {
  const { r, pools } = ctx;
  if (pools.idempotencyKeys.length > 0 && r.chance(0.4)) return r.pick(pools.idempotencyKeys);
  return r.weighted([
    [4, () => `key-${fromAlphabet(r, 'abcdefghijklmnopqrstuvwxyz0123456789', r.int(1, 20))}`],
    [1, () => r.pick(['', ' ', 'a', '\t', ',', 'a, b', '\u00ff', '\u0080\u0081', '"quoted"'])],
    [1, () => 'k'.repeat(r.pick([254, 255, 256, 1000, 8000]))],
    [2, () => headerText(r, fuzzString(r, 300))],
  ]);
}

function oddHeader(r: Random): [string, string] {
  return r.pick<[string, string]>([
    ['accept', headerText(r, fuzzString(r, 100))],
    ['accept', 'text/event-stream'],
    ['x-forwarded-for', r.pick(['127.0.0.1', '::1', 'garbage', '1.1.1.1, 2.2.2.2', headerText(r, fuzzString(r, 50))])],
    ['content-encoding', r.pick(['gzip', 'br', 'identity', 'x'])],
    ['connection', 'upgrade'],
    ['upgrade', 'websocket'],
    ['cookie', headerText(r, fuzzString(r, 200))],
    ['origin', 'null'],
    ['x-http-method-override', r.pick(['DELETE', 'PUT', 'GET'])],
    [fromAlphabet(r, 'abcdefghijklmnopqrstuvwxyz-', r.int(1, 30)), headerText(r, fuzzString(r, 100))],
  ]);
}
