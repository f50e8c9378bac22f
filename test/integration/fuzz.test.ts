import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { issueToken } from '../../internal/service/endUserToken.ts';
import { errorBodySchema } from '../../internal/http/errorHandler.ts';
import { fuzzSeed, Random } from '../support/fuzzRandom.ts';
import {
  emptyPools,
  garbageAuthorization,
  generateRequest,
  harvest,
  operationsOf,
  type Credentials,
  type FuzzOperation,
  type FuzzPools,
  type FuzzRequest,
  type OpenApiDocument,
} from '../support/fuzzRequests.ts';
import { shrink } from '../support/fuzzShrink.ts';
import { changes, snapshot, TABLES } from '../support/fuzzSnapshot.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { everyRouteEnv, servedOpenApi, type RouteDefinition } from '../support/servedOpenApi.ts';
import { deliverToInboxes } from '../support/claims.ts';
import { buildApi, insertPending, sendJson, useTestApi, type ServedApp, type TestApi } from './helpers.ts';

/*
 * Random requests at every route the OpenAPI document lists: path parameters, queries, bodies and
 * headers valid, nearly valid and not at all. Whatever comes in, the API answers below 500 (the
 * dependencies are up, so not even the documented 503), every 4xx carries the one error body, and a
 * refused request leaves every table and both Redis lists as they were.
 *
 * The seed is printed; FUZZ_SEED=<seed> repeats the file's run request for request (ids the server
 * generates aside), FUZZ_REQUESTS=<n> changes its volume. A 5xx or a stray change is printed with
 * the smallest request a greedy shrink finds that still shows it.
 */

const INBOX_SECRET = 'fuzz-test-inbox-secret-0123456789abcdef';
/** Requests without API keys (AUTH_DISABLED), then with them; tuned to stay well under a minute on 2 cores. */
const REQUESTS_WITHOUT_KEYS = Number(process.env.FUZZ_REQUESTS ?? 4000);
const REQUESTS_WITH_KEYS = Math.ceil(REQUESTS_WITHOUT_KEYS / 4);
/** The live routes: a stream that stays open, or a WebSocket; fuzzed apart. */
const LIVE_ROUTES = new Set(['GET /inbox/stream', 'GET /inbox/ws']);
/**
 * The docs page's files: they take no input (no parameter, query or body) to vary, and fetching
 * Swagger UI's 1.8 MB bundle hundreds of times would only spend the run's time.
 */
const FILE_ROUTES = new Set(['GET /docs/swagger-ui.css', 'GET /docs/swagger-ui-bundle.js', 'GET /docs/docs.js']);
/** What the fuzzer sends requests to. */
const isFuzzed = (op: FuzzOperation) => !LIVE_ROUTES.has(op.name) && !FILE_ROUTES.has(op.name);
/** Routes with a body get more of the volume, creating notifications most: most of what can go wrong is in a body. */
const weightOf = (op: FuzzOperation) => (op.name === 'POST /notifications' ? 10 : op.body ? 4 : 1);
/** Groups of findings (kind, route, status) whose first request is shrunk before it is printed. */
const SHRUNK_PER_RUN = 5;

/** Users with a profile, inbox items and a FAILED notification before the fuzzing starts. */
const SEEDED_USERS = ['u-seed-a', 'u-seed-b', 'Zoë', 'a b'];

/** Connection-level headers `fetch` will not send (it manages the connection itself). */
const HOP_BY_HOP = new Set(['connection', 'upgrade', 'keep-alive', 'transfer-encoding', 'expect', 'te', 'trailer']);

/**
 * Sends the request over HTTP. Control characters in a header value are sent as spaces: no HTTP
 * client sends them, and Node's parser would refuse the request before the API saw it.
 */
async function send(app: ServedApp, request: FuzzRequest): Promise<Response> {
  const headers = request.headers
    .filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase()))
    .map(([name, value]) => [name, value.replace(/[^\t\x20-\x7e\x80-\xff]/g, ' ')] as [string, string]);
  return app.request(request.url, { method: request.method, headers, body: request.body });
}

/** A request as it could be typed again: method, URL, headers, and the body as a JSON string (escapes visible). */
function describeRequest(request: FuzzRequest): string {
  const lines = [`${request.method} ${request.url.length > 400 ? `${request.url.slice(0, 400)}… (${request.url.length} characters)` : request.url}`];
  for (const [name, value] of request.headers) lines.push(`  ${name}: ${JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value)}`);
  if (request.body instanceof Uint8Array) lines.push(`  body (bytes): ${Buffer.from(request.body).toString('hex')}`);
  else if (request.body !== undefined) {
    const shown = request.body.length > 600 ? `${request.body.slice(0, 600)}… (${request.body.length} characters)` : request.body;
    lines.push(`  body: ${JSON.stringify(shown)}`);
  }
  return lines.join('\n');
}

/** The route declarations the document is generated from, as the app has them. */
let definitions: RouteDefinition[];

/** The zod schema declared for a route's answer with this status, when it is JSON. */
function registeredSchema(operation: string, status: number): z.ZodType | undefined {
  const [method, path] = operation.split(' ');
  for (const d of definitions) {
    if (!d.route || d.route.method !== method!.toLowerCase() || d.route.path !== path) continue;
    const media = (d.route.responses[String(status)] as ResponseConfig | undefined)?.content?.['application/json'];
    const schema = media && 'schema' in media ? media.schema : undefined;
    return schema && typeof schema === 'object' && 'safeParse' in schema ? (schema as z.ZodType) : undefined;
  }
  return undefined;
}

interface Finding {
  kind: '5xx' | 'stray change' | 'error body' | 'undocumented status' | 'answer off schema';
  request: FuzzRequest;
  status: number;
  detail: string;
}

/**
 * Node's HTTP server refuses some requests before the API sees them (headers past 16 KB: 431; bytes
 * its parser does not take: 400), with an empty body and no content type, which an answer of the
 * API never has. Those are the server's, as they would be in production, and not judged here.
 */
function refusedByServer(res: Response, text: string): boolean {
  return (res.status === 400 || res.status === 431) && text === '' && !res.headers.get('content-type');
}

/** What is wrong with one answer, apart from stray changes (which need the snapshots). */
async function judge(op: FuzzOperation, request: FuzzRequest, res: Response): Promise<{ findings: Omit<Finding, 'request'>[]; body: unknown }> {
  const findings: Omit<Finding, 'request'>[] = [];
  const text = await res.text();
  if (refusedByServer(res, text)) return { findings, body: undefined };
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  const status = res.status;
  if (status >= 500) findings.push({ kind: '5xx', status, detail: text.slice(0, 300) });
  if (status >= 400 && status < 500 && request.method !== 'HEAD') {
    const type = res.headers.get('content-type') ?? '';
    const shape = errorBodySchema.safeParse(body);
    if (!type.startsWith('application/json') || !shape.success) findings.push({ kind: 'error body', status, detail: `${type}: ${text.slice(0, 300)}` });
  }
  if (request.onRoute && status !== 404 && status < 500 && !op.statuses.has(status)) {
    findings.push({ kind: 'undocumented status', status, detail: text.slice(0, 300) });
  }
  if (request.onRoute && status < 300 && request.method !== 'HEAD') {
    const schema = registeredSchema(op.name, status);
    const parsed = schema?.safeParse(body);
    if (parsed && !parsed.success) findings.push({ kind: 'answer off schema', status, detail: JSON.stringify(parsed.error.issues).slice(0, 300) });
  }
  return { findings, body };
}

interface RunOptions {
  api: TestApi;
  operations: FuzzOperation[];
  doc: OpenApiDocument;
  pools: FuzzPools;
  credentials: Credentials;
  seed: number;
  requests: number;
}

interface RunReport {
  findings: Finding[];
  statuses: Record<number, number>;
  perRoute: Record<string, number>;
}

/**
 * Sends `requests` random requests one at a time, snapshotting after each so that a refused
 * request's changes are its own. Every request is judged; the pools learn what 2xx answers created.
 */
async function fuzz(options: RunOptions): Promise<RunReport> {
  const r = new Random(options.seed);
  const ctx = { r, doc: options.doc, pools: options.pools, credentials: options.credentials };
  const weighted = options.operations.map((op) => [weightOf(op), () => op] as const);
  const report: RunReport = { findings: [], statuses: {}, perRoute: {} };
  let before = await snapshot(options.api);
  for (let i = 0; i < options.requests; i++) {
    const op = r.weighted(weighted);
    const request = await generateRequest(ctx, op);
    const res = await send(options.api.app, request);
    const { findings, body } = await judge(op, request, res);
    const after = await snapshot(options.api);
    const changed = changes(before, after);
    if (res.status >= 400 && changed.length > 0) {
      findings.push({ kind: 'stray change', status: res.status, detail: changed.join('; ') });
    }
    for (const f of findings) report.findings.push({ ...f, request });
    if (res.status < 300) harvest(options.pools, body);
    report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
    report.perRoute[op.name] = (report.perRoute[op.name] ?? 0) + 1;
    before = after;
  }
  return report;
}

/** The findings, one of each kind and route shrunk to its smallest failing request, as text for the assertion. */
async function explain(api: TestApi, operations: FuzzOperation[], findings: Finding[], seed: number): Promise<string> {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = `${f.kind} ${f.request.operation} ${f.status}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const out = [`${findings.length} finding(s) with FUZZ_SEED=${seed}:`];
  let shrunk = 0;
  for (const [key, group] of groups) {
    const first = group[0]!;
    let request = first.request;
    if ((first.kind === '5xx' || first.kind === 'stray change') && shrunk++ < SHRUNK_PER_RUN) {
      const op = operations.find((o) => o.name === first.request.operation)!;
      request = await shrink(first.request, async (candidate) => {
        const before = await snapshot(api);
        const res = await send(api.app, candidate);
        const { findings: now } = await judge(op, candidate, res);
        if (first.kind === '5xx') return now.some((f) => f.kind === '5xx');
        return res.status >= 400 && changes(before, await snapshot(api)).length > 0;
      });
    }
    out.push(`\n${key} (${group.length}×): ${first.detail}\n${describeRequest(request)}`);
  }
  return out.join('\n');
}

describe('fuzzing every documented route', () => {
  const seed = fuzzSeed();
  const db = useTestDatabase();
  const api = useTestApi(db, { env: everyRouteEnv(INBOX_SECRET) });
  let doc: OpenApiDocument;
  let operations: FuzzOperation[];
  const pools = emptyPools();

  beforeAll(async () => {
    console.log(`fuzz seed ${seed}: FUZZ_SEED=${seed} npx vitest run test/integration/fuzz.test.ts repeats this run`);
    const served = await servedOpenApi(api.app);
    doc = served.document as OpenApiDocument;
    definitions = served.definitions;
    operations = operationsOf(doc);
    await seedData(api, pools);
  });

  it('compares every table, sees any change in one, and finds the routes in the document', async () => {
    const rows = await db.sql<{ table_name: string }[]>`
      select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' and table_name <> 'schema_migrations'`;
    expect(rows.map((t) => t.table_name).sort(), 'a new table must be added to TABLES').toEqual([...TABLES].sort());
    // The comparison sees a row added, a row changed and an id queued.
    const start = await snapshot(api);
    const row = await insertPending(db.sql, { user_id: 'u-sensitivity' });
    const added = await snapshot(api);
    await db.sql`update notifications set title = 'changed' where id = ${row.id}`;
    const updated = await snapshot(api);
    await api.queue.push([row.id]);
    const n = start.tables.notifications!.rows;
    expect(changes(start, added)).toEqual([`notifications: ${n} → ${n + 1} rows`]);
    expect(changes(added, updated)).toEqual(['notifications: a row changed']);
    expect(changes(updated, await snapshot(api))).toEqual([`queue: ${start.queue} → ${start.queue + 1}`]);
    expect(operations.length).toBeGreaterThan(25);
    for (const skipped of [...LIVE_ROUTES, ...FILE_ROUTES]) expect(operations.map((o) => o.name)).toContain(skipped);
  });

  it('answers every request below 500, refusals with the error body and no change, without API keys', async () => {
    const fuzzed = operations.filter(isFuzzed);
    const report = await fuzz({ api, operations: fuzzed, doc, pools, credentials: { inboxSecret: INBOX_SECRET }, seed, requests: REQUESTS_WITHOUT_KEYS });
    console.log(`without keys: statuses ${JSON.stringify(report.statuses)}`);
    for (const op of fuzzed) expect(report.perRoute[op.name], `${op.name} was fuzzed`).toBeGreaterThan(0);
    expect(report.statuses[200] ?? 0, 'some requests succeed').toBeGreaterThan(REQUESTS_WITHOUT_KEYS / 20);
    expect(report.findings.length === 0 ? '' : await explain(api, fuzzed, report.findings, seed)).toBe('');
  });

  it('does the same with API keys required: a key with every scope, a read-only one, wrong ones', async () => {
    const keyed = await buildApi(db, { env: { AUTH_DISABLED: 'false', ...everyRouteEnv(INBOX_SECRET) } });
    try {
      const all = await createApiKey(db.sql, 'fuzz-all', ['send', 'read', 'admin']);
      const readOnly = await createApiKey(db.sql, 'fuzz-read', ['read']);
      const apiKey = (r: Random): string | undefined =>
        r.weighted<string | undefined>([
          [16, () => `Bearer ${all.key}`],
          [1, () => `bearer   ${all.key}`],
          [1, () => `Bearer ${readOnly.key}`],
          [1, () => `Bearer ${all.key.slice(0, -1)}${all.key.endsWith('A') ? 'B' : 'A'}`],
          [1, () => garbageAuthorization(r)],
          [1, () => undefined],
        ]);
      const fuzzed = operations.filter(isFuzzed);
      const report = await fuzz({ api: keyed, operations: fuzzed, doc, pools, credentials: { apiKey, inboxSecret: INBOX_SECRET }, seed: seed + 1, requests: REQUESTS_WITH_KEYS });
      console.log(`with keys: statuses ${JSON.stringify(report.statuses)}`);
      expect(report.statuses[401] ?? 0, 'some requests are refused for their key').toBeGreaterThan(0);
      expect(report.statuses[403] ?? 0, 'some for their scope').toBeGreaterThan(0);
      expect(report.findings.length === 0 ? '' : await explain(keyed, fuzzed, report.findings, seed + 1)).toBe('');
    } finally {
      await keyed.close();
    }
  });

  it('opens the live stream or refuses with the error body on the live routes, never 5xx', async () => {
    const r = new Random(seed + 2);
    for (let i = 0; i < 40; i++) {
      const path = r.pick(['/inbox/stream', '/inbox/ws']);
      const token = await issueToken(r.pick(SEEDED_USERS), INBOX_SECRET, 600);
      const inQuery = r.chance(0.3);
      const query = [inQuery ? `access_token=${token}` : '', r.chance(0.5) ? `since=${encodeURIComponent(r.pick(['0', '5', '-1', 'x', '1e400', '%', '']))}` : '']
        .filter(Boolean)
        .join('&');
      const headers: Record<string, string> = inQuery ? {} : { authorization: `Bearer ${token}` };
      if (r.chance(0.5)) headers['last-event-id'] = r.pick(['1', 'abc', '-5', '99999999999999999999', ' ']);
      const res = await api.app.request(query ? `${path}?${query}` : path, { headers });
      const name = `${path}?${query} ${JSON.stringify(headers)}`;
      // The stream opens (and is dropped here); a bad `since` is 400; a WebSocket route not asked
      // for an upgrade (fetch cannot ask) is 404.
      expect(path === '/inbox/stream' ? [200, 400] : [400, 404], name).toContain(res.status);
      if (res.status === 200) {
        expect(res.headers.get('content-type'), name).toContain('text/event-stream');
        await res.body?.cancel();
      } else {
        expect(errorBodySchema.safeParse(await res.json()).success, name).toBe(true);
      }
    }
  });

  // What the fuzzing found, each as the smallest request that shows it. These fail until fixed.
  describe('bugs the fuzzing found', () => {
    // inboxPageQuerySchema takes any cursor up to 2^53-1, but inbox_items.seq is an int: PostgreSQL
    // refuses to compare it with 2147483648 ("value out of range for type integer", 22003), and the
    // error surfaces as 500. The documented answer for a bad cursor is 400.
    //   GET /users/u-seed-a/inbox?cursor=2147483648
    //   GET /inbox?cursor=2147483648  (with a valid inbox token)
    it('answers 400, not 500, for an inbox cursor past the largest seq', async () => {
      const token = await issueToken('u-seed-a', INBOX_SECRET, 600);
      expect((await api.app.request('/users/u-seed-a/inbox?cursor=2147483648')).status).toBe(400);
      expect((await api.app.request('/inbox?cursor=2147483648', { headers: { authorization: `Bearer ${token}` } })).status).toBe(400);
    });

    // The dead-letter filters take any RFC 3339 time zod's z.iso.datetime({ offset: true }) takes,
    // which includes offsets up to ±23:59 and the year 0000; PostgreSQL's timestamptz reads offsets
    // up to ±15:59 only and has no year 0 ("time zone displacement out of range", 22009; "date/time
    // field value out of range", 22008), and the error surfaces as 500 instead of 400.
    //   GET /admin/dead-letters?since=2024-01-01T00:00:00%2B16:00
    //   GET /admin/dead-letters?until=0000-01-01T00:00:00Z
    it('answers 400, not 500, for a dead-letter filter time PostgreSQL cannot read', async () => {
      expect((await api.app.request('/admin/dead-letters?since=2024-01-01T00:00:00%2B16:00')).status).toBe(400);
      expect((await api.app.request('/admin/dead-letters?until=0000-01-01T00:00:00Z')).status).toBe(400);
    });

    // The same with the listing's cursor, which is base64url of `time|id` and checked with
    // z.iso.datetime() before it reaches PostgreSQL: a forged cursor for the year 0000 answers 500;
    // a bad cursor is documented as 400.
    //   GET /admin/dead-letters?cursor=MDAwMC0wMS0wMVQwMDowMDowMFp8MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw
    it('answers 400, not 500, for a dead-letter cursor with a time PostgreSQL cannot read', async () => {
      const cursor = Buffer.from('0000-01-01T00:00:00Z|00000000-0000-4000-8000-000000000000').toString('base64url');
      expect((await api.app.request(`/admin/dead-letters?cursor=${cursor}`)).status).toBe(400);
    });

    // zod's string max() counts code points, so userIdSchema and userIdPathSchema take a user id of
    // 255 emoji (510 UTF-16 code units) for notifications, profiles and /dev/token; userIdFromToken
    // counts UTF-16 code units (`sub.length > 255`) and refuses that user's inbox token with 401. The
    // API issues a token it then refuses (not a 5xx; found through the fuzzing's pools):
    //   POST /dev/token  {"user_id":"💩" × 255}  → 200 {token}
    //   GET /inbox  authorization: Bearer <that token>  → 401 "its \"sub\" must be the user id (1 to 255 characters)"
    it('lets every user id the API takes read its inbox with a token for it', async () => {
      const userId = '\u{1F4A9}'.repeat(255);
      const issued = await sendJson(api.app, 'POST', '/dev/token', { user_id: userId });
      expect(issued.status).toBe(200);
      const { token } = (await issued.json()) as { token: string };
      expect((await api.app.request('/inbox', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    });

    // zod 4's min/max length checks run even after a field's type check failed, whenever the value
    // has a `length` (checks.js, _whenHasLength), and compare that length with a number. A JSON
    // object whose `length` is an object with a `toString` that is not a function cannot be
    // converted: the comparison throws a TypeError out of safeParse, and readJson lets it through
    // to the error handler as a 500. Any body field with a length rule does it, on every route with
    // a body (user_id, user_ids, body, title, email, opted_out, ids, error, push_subscriptions...):
    //   PUT /users/u-seed-a/preferences  {"opted_out":{"length":{"toString":null}}}
    //   POST /notifications  {"user_id":{"length":{"toString":null}},"type":"IN_APP","body":"x"}
    it('answers 400, not 500, for a body field that is an object with an odd "length"', async () => {
      const before = await snapshot(api);
      const preferences = await sendJson(api.app, 'PUT', '/users/u-seed-a/preferences', { opted_out: { length: { toString: null } } });
      const notification = await sendJson(api.app, 'POST', '/notifications', { user_id: { length: { toString: null } }, type: 'IN_APP', body: 'x' });
      expect({ preferences: preferences.status, notification: notification.status }).toEqual({ preferences: 400, notification: 400 });
      expect(changes(before, await snapshot(api))).toEqual([]);
    });

    // A replay with such a time fails in its first batch: replayAndRecord then records the replay
    // (count 0, the bad filter in it) before passing the error on, so the request answers 500 AND
    // leaves a dead_letter_replays row, for a request that should have been refused with 400.
    //   POST /admin/dead-letters/replay  content-type: application/json
    //   {"all":true,"since":"2024-01-01T00:00:00+16:00"}
    it('refuses a replay with a time PostgreSQL cannot read with 400, recording nothing', async () => {
      const before = await snapshot(api);
      const res = await sendJson(api.app, 'POST', '/admin/dead-letters/replay', { all: true, since: '2024-01-01T00:00:00+16:00' });
      const changed = changes(before, await snapshot(api));
      expect({ status: res.status, changed }).toEqual({ status: 400, changed: [] });
    });
  });
});

/**
 * Rows for requests to find: users with a webhook address and inbox items, a topic with
 * subscribers, and FAILED notifications for the dead-letter routes.
 */
async function seedData(api: TestApi, pools: FuzzPools): Promise<void> {
  for (const userId of SEEDED_USERS) {
    const put = await sendJson(api.app, 'PUT', `/users/${encodeURIComponent(userId)}`, { webhook_url: 'https://example.com/hook', locale: 'en' });
    expect(put.status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const row = await insertPending(api.sql, { user_id: userId, title: `seed ${i}` });
      await deliverToInboxes(api.sql, [row.id]);
      pools.notificationIds.push(row.id);
    }
    const failed = await insertPending(api.sql, { user_id: userId, type: 'WEBHOOK', recipient: 'https://example.com/hook' });
    await api.sql`update notifications set status = 'FAILED', error_reason = 'seed: HTTP 500' where id = ${failed.id}`;
    pools.notificationIds.push(failed.id);
    pools.userIds.push(userId);
  }
  const topic = await sendJson(api.app, 'PUT', '/topics/t-seed/subscribers', { user_ids: pools.userIds });
  expect(topic.status).toBe(200);
  pools.topics.push('t-seed');
}
