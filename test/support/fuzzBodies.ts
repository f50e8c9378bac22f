import { deeplyNested, fromAlphabet, fuzzDateTime, fuzzString, fuzzUuid, impostorText, jsonText, notJsonText, oddBytes, type Random } from './fuzzRandom.ts';
import type { FuzzOperation, GenerateContext, JsonSchema, OpenApiDocument } from './fuzzRequests.ts';

/*
 * Bodies for the HTTP fuzz test: a route's body as its schema in the OpenAPI document describes it
 * (with the cross-field rules the schema cannot say), that body mutated, and bodies that are not
 * JSON at all, each with a content type that may or may not say JSON.
 */

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/vnd.api+json', 'application/merge-patch+json', 'application/json;charset=utf-16', 'application/json ;', 'application/json; boundary=x'];
const OTHER_TYPES = ['text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/xml', 'json', '*/*', '', ' application/json', 'application/json-patch', 'application/octet-stream'];

/** A body for `op` (valid, mutated, any JSON, deeply nested, not JSON, bytes, none) and a content type, or none. */
export function requestBody(ctx: GenerateContext, op: FuzzOperation): { body?: string | Uint8Array<ArrayBuffer>; contentType?: string } {
  const { r } = ctx;
  const contentType = r.weighted<string | undefined>([
    [16, () => 'application/json'],
    [2, () => r.pick(JSON_TYPES)],
    [2, () => r.pick(OTHER_TYPES)],
    [1, () => undefined],
  ]);
  const valid = () => validBody(ctx, op);
  const body = r.weighted<string | Uint8Array<ArrayBuffer> | undefined>([
    [6, () => JSON.stringify(valid())],
    [7, () => mutatedBody(ctx, op, valid())],
    [2, () => jsonText(r, r.int(0, 5))],
    [1, () => deeplyNested(r, r.pick([33, 34, 100, 1000, 5000, 100_000]))],
    [2, () => notJsonText(r, JSON.stringify(valid()))],
    [1, () => r.pick(['', ' ', '\n', 'null', '{}', '[]'])],
    [1, () => undefined],
    [1, () => oddBytes(r)],
    [0.1, () => `{"body":"${'x'.repeat(1024 * 1024)}"}`],
  ]);
  return { body, contentType };
}

/** A body the route should take, or nearly (ids that may not exist, a user without an address). */
export function validBody(ctx: GenerateContext, op: FuzzOperation): Record<string, unknown> {
  const { r, pools } = ctx;
  const body = (op.body ? fromSchema(ctx, op.body, 4) : {}) as Record<string, unknown>;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
  switch (op.name) {
    case 'POST /notifications': {
      delete body.user_id;
      delete body.user_ids;
      delete body.topic;
      delete body.to;
      const target = r.pick(['user_id', 'user_ids', 'topic']);
      if (target === 'user_id') body.user_id = pools.userIds.length > 0 && r.chance(0.5) ? r.pick(pools.userIds) : userId(r);
      if (target === 'user_ids') body.user_ids = Array.from({ length: r.int(1, 5) }, () => (pools.userIds.length > 0 && r.chance(0.5) ? r.pick(pools.userIds) : userId(r)));
      if (target === 'topic') body.topic = pools.topics.length > 0 && r.chance(0.6) ? r.pick(pools.topics) : topicKey(r);
      body.type = r.weighted([
        [6, () => 'IN_APP'],
        [3, () => 'WEBHOOK'],
        [1, () => r.pick(['EMAIL', 'SMS', 'PUSH'])],
      ]);
      if (body.type === 'WEBHOOK' && target === 'user_id' && r.chance(0.8)) body.to = r.pick(['https://example.com/hook', 'http://example.org/h?x=1', 'https://127.0.0.1/h', 'https://[::1]/h', 'https://10.0.0.1/', 'https://localhost/h']);
      if (body.type !== 'EMAIL') delete body.html;
      if (typeof body.body !== 'string' || body.body.length === 0) body.body = 'hello';
      if (r.chance(0.3)) body.data = storable({ ...(JSON.parse(jsonText(r, 3)) as object) });
      return body;
    }
    case 'POST /admin/dead-letters/replay': {
      if (r.chance(0.5)) {
        for (const f of ['all', 'channel', 'error', 'since', 'until']) delete body[f];
        body.ids = Array.from({ length: r.int(1, 4) }, () => (pools.notificationIds.length > 0 && r.chance(0.6) ? r.pick(pools.notificationIds) : fuzzUuid(r)));
      } else {
        delete body.ids;
        body.all = true;
        if (body.since !== undefined && body.until !== undefined && String(body.until) <= String(body.since)) delete body.until;
      }
      if (r.chance(0.7)) body.dry_run = true;
      return body;
    }
    case 'PUT /users/{userId}':
      if (body.webhook_url !== undefined && r.chance(0.5)) body.webhook_url = 'https://example.com/hook';
      return body;
    default:
      return body;
  }
}

/** A valid body changed in one to three ways: fields dropped, repeated, retyped, nulled, oddly filled, added. */
function mutatedBody(ctx: GenerateContext, op: FuzzOperation, body: Record<string, unknown>): string {
  const { r } = ctx;
  const known = Object.keys(op.body?.$ref ? resolve(ctx.doc, op.body).properties ?? {} : op.body?.properties ?? {});
  const fieldOf = () => r.pick([...new Set([...Object.keys(body), ...known, 'x'])]);
  const raw: [string, string][] = [];
  for (let n = r.int(1, 3); n > 0; n--) {
    r.weighted([
      [2, () => delete body[fieldOf()]],
      [3, () => (body[fieldOf()] = JSON.parse(jsonText(r, 3)) as unknown)],
      [1, () => (body[fieldOf()] = null)],
      [1, () => raw.push([fieldOf(), impostorText(r)])],
      [3, () => (body[fieldOf()] = fuzzString(r, 3000))],
      [1, () => (body[fieldOf()] = r.pick([[], [''], ['a', 'a'], Array.from({ length: 1001 }, (_, i) => `u${i}`), Array.from({ length: 6 }, () => 'IN_APP')]))],
      [1, () => (body[fieldOf()] = JSON.parse(deeplyNested(r, r.pick([31, 32, 33, 40]))) as unknown)],
      [1, () => (body.data = JSON.parse(`{"a":${deeplyNested(r, r.pick([30, 31, 32, 33]))}}`) as unknown)],
      [1, () => (body.data = JSON.parse(`{${JSON.stringify(r.pick(['__proto__', 'constructor', '\u0000', '\ud800', '']))}:${jsonText(r, 2)}}`) as unknown)],
      // Raw members, so the text holds what JSON.stringify would not write: -0, 1e309, a key twice.
      [3, () => raw.push([fieldOf(), jsonText(r, 3)])],
      [1, () => raw.push([r.pick(['__proto__', 'constructor', 'prototype']), jsonText(r, 2)])],
    ]);
  }
  let text = JSON.stringify(body);
  for (const [key, value] of raw) {
    const member = `${JSON.stringify(key)}:${value}`;
    text = text === '{}' ? `{${member}}` : r.chance(0.5) ? `{${member},${text.slice(1)}` : `${text.slice(0, -1)},${member}}`;
  }
  if (r.chance(0.05)) text = `[${text}]`;
  return text;
}

// Values from the document's schemas.

const UNSTORABLE = /[\u0000\p{Cs}]/gu;

/** `value` without the NULs and lone surrogates PostgreSQL refuses, in its strings and keys. */
function storable(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(UNSTORABLE, '');
  if (Array.isArray(value)) return value.map(storable);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k.replace(UNSTORABLE, ''), { value: storable(v), enumerable: true, writable: true, configurable: true });
  return out;
}

function resolve(doc: OpenApiDocument, schema: JsonSchema): JsonSchema {
  let s = schema;
  for (let i = 0; s.$ref && i < 10; i++) {
    const name = s.$ref.replace('#/components/schemas/', '');
    const target = doc.components.schemas[name];
    if (!target) throw new Error(`unresolved ${s.$ref}`);
    s = target;
  }
  return s;
}

/** Generators for the patterns the document uses; a pattern not listed gets plain letters. */
const PATTERNS: Record<string, (r: Random, s: JsonSchema) => string> = {
  '^[\\w.:@-]+$': (r) => topicKey(r),
  '^\\+[1-9]\\d{6,14}$': (r) => `+${r.int(1, 9)}${fromAlphabet(r, '0123456789', r.int(6, 14))}`,
  '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$': (r) => r.pick(['en', 'pt-BR', 'zh-Hant-TW', 'fra', 'de-CH-1996']),
  '^[A-Za-z0-9_-]+={0,2}$': (r, s) => fromAlphabet(r, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', r.int(s.minLength ?? 1, s.maxLength ?? 32)),
};

/** A value the schema describes (its cross-field rules aside). */
export function fromSchema(ctx: GenerateContext, schema: JsonSchema, depth: number): unknown {
  const { r } = ctx;
  const s = resolve(ctx.doc, schema);
  if (s.enum) return r.pick(s.enum);
  const types = Array.isArray(s.type) ? s.type : [s.type ?? 'object'];
  const type = types.length > 1 && r.chance(0.8) ? types.find((t) => t !== 'null')! : r.pick(types);
  switch (type) {
    case 'null':
      return null;
    case 'boolean':
      return r.chance(0.5);
    case 'integer':
    case 'number':
      return r.int(s.minimum ?? 0, Math.min(s.maximum ?? 1000, (s.minimum ?? 0) + 1000));
    case 'string':
      return stringFor(ctx, s);
    case 'array': {
      const min = s.minItems ?? 0;
      const length = r.int(min, Math.min(s.maxItems ?? min + 4, min + 4));
      return Array.from({ length }, () => (s.items ? fromSchema(ctx, s.items, depth - 1) : null));
    }
    default: {
      const out: Record<string, unknown> = {};
      for (const [name, child] of Object.entries(s.properties ?? {})) {
        if (s.required?.includes(name) || r.chance(0.5)) out[name] = fromSchema(ctx, child, depth - 1);
      }
      if (!s.properties && s.additionalProperties !== false && depth > 0) {
        for (let i = r.length(4); i > 0; i--) out[fromAlphabet(r, 'abcdefgh', r.int(1, 6))] = storable(JSON.parse(jsonText(r, Math.min(depth, 2))));
      }
      return out;
    }
  }
}

function stringFor(ctx: GenerateContext, s: JsonSchema): string {
  const { r, pools } = ctx;
  switch (s.format) {
    case 'uuid':
      return pools.notificationIds.length > 0 && r.chance(0.5) ? r.pick(pools.notificationIds) : fuzzUuid(r);
    case 'email':
      return `${fromAlphabet(r, 'abcdefghij', r.int(1, 10))}@example.com`;
    case 'uri':
      return `https://push.example.com/${fromAlphabet(r, 'abcdefghij0123456789', r.int(1, 30))}`;
    case 'date-time':
      return fuzzDateTime(r);
  }
  const pattern = s.pattern && PATTERNS[s.pattern];
  if (pattern) return pattern(r, s);
  const min = Math.max(1, s.minLength ?? 1);
  return r.chance(0.8) ? fromAlphabet(r, 'abcdefghijklmnopqrstuvwxyz', r.int(min, Math.min(s.maxLength ?? 20, min + 20))) : `ünï ${userId(r)}`;
}

/** A user id a producer might use: plain, an email, unicode, with spaces or slashes. */
export function userId(r: Random): string {
  return r.weighted([
    [6, () => `u-${fromAlphabet(r, 'abcdefghijklmnop', r.int(1, 4))}`],
    [1, () => `${fromAlphabet(r, 'abc', r.int(1, 5))}@example.com`],
    [1, () => r.pick(['Zoë', '用户', 'a b', 'a/b', 'a%2Fb', '..', '💩', 'x'.repeat(255), 'user:1', '?x=1', '#1', 'NULL'])],
  ]);
}

export function topicKey(r: Random): string {
  return r.weighted([
    [5, () => `t-${fromAlphabet(r, 'abcdef', r.int(1, 3))}`],
    [1, () => r.pick(['a.b:c@d-e_f', '..', '.', '-', '@', ':', 'x'.repeat(200)])],
  ]);
}
