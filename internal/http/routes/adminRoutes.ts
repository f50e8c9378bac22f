import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { timestampSchema } from '../../domain/timestamp.ts';
import { uuidSchema } from '../../domain/uuid.ts';
import { replayAndRecord, replaySummarySchema, type ReplaySelection } from '../../service/deadLetterReplays.ts';
import { deadLetterPageSchema, searchDeadLetters, type DeadLetterFilter } from '../../service/deadLetterSearch.ts';
import { CHANNELS } from '../../domain/notification.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { isStorableText, UNSTORABLE_MESSAGE } from '../../domain/storableText.ts';
import { json, jsonBody } from '../openapi/answers.ts';
import { operatorRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';

/** Ids one `{ids: [...]}` replay may name; `{all: true}` with filters reaches any number. */
const MAX_REPLAY_IDS = 10_000;

/** Who a replay is recorded as when AUTH_DISABLED lets requests in without a key. */
const NO_API_KEY = 'unauthenticated';

const filterFields = {
  channel: z.enum(CHANNELS).optional(),
  error: z.string().min(1).max(1000).refine(isStorableText, UNSTORABLE_MESSAGE).optional(),
  since: timestampSchema.optional(),
  until: timestampSchema.optional(),
};

function sinceBeforeUntil(f: { since?: string; until?: string }, ctx: z.RefinementCtx): void {
  if (f.since !== undefined && f.until !== undefined && Date.parse(f.until) <= Date.parse(f.since)) {
    ctx.addIssue({ code: 'custom', path: ['until'], message: 'must be later than since' });
  }
}

/** A query parameter given empty (`?channel=`) counts as absent. */
const emptyAsAbsent = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (v === '' ? undefined : v), schema);

/** `GET /admin/dead-letters` query. */
const listQuerySchema = z
  .object({
    channel: emptyAsAbsent(filterFields.channel),
    error: emptyAsAbsent(filterFields.error),
    since: emptyAsAbsent(filterFields.since),
    until: emptyAsAbsent(filterFields.until),
    limit: emptyAsAbsent(z.coerce.number().int().min(1).max(200).default(50)),
    cursor: emptyAsAbsent(z.string().min(1).max(200).optional()),
  })
  .superRefine(sinceBeforeUntil);

/** `{ids: [...]}` or `{all: true, channel?, error?, since?, until?}`, with `dry_run`. */
const replaySchema = z
  .object({
    ids: z.array(uuidSchema).min(1).max(MAX_REPLAY_IDS).optional(),
    all: z.literal(true).optional(),
    ...filterFields,
    dry_run: z.boolean().default(false),
  })
  .superRefine((body, ctx) => {
    if ((body.ids === undefined) === (body.all === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['ids'], message: 'give either ids or "all": true' });
    }
    const filters = (['channel', 'error', 'since', 'until'] as const).filter((f) => body[f] !== undefined);
    if (body.ids !== undefined && filters.length > 0) {
      ctx.addIssue({ code: 'custom', path: [filters[0]!], message: 'filters go with "all": true; ids are replayed as given' });
    }
    sinceBeforeUntil(body, ctx);
  });

const operations = operatorRoutes('Operations');

const listRoute = operations.get('/dead-letters', {
  summary: 'FAILED notifications, the latest failure first',
  request: { query: listQuerySchema },
  responses: { 200: json(deadLetterPageSchema, 'a page of dead letters') },
  errors: { 400: 'a bad filter, `limit` or `cursor`' },
});

const replayRoute = operations.post('/dead-letters/replay', {
  summary: 'Put dead letters back to PENDING: `ids`, or `all` matching filters',
  description: "Recorded under the API key's name. `dry_run` counts without changing anything.",
  request: { body: jsonBody(replaySchema) },
  responses: { 200: json(replaySummarySchema, 'what was (or, on a dry run, would be) replayed') },
});

/**
 * Operators' routes, mounted under `/admin` behind the admin scope: dead letters listed from
 * PostgreSQL and replayed over HTTP, each replay recorded under the API key's name.
 */
export function adminRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'queue' | 'requestTimeoutMs'>): OpenAPIHono {
  const app = new OpenAPIHono();

  // A bad query is refused by the app's default hook: `invalid query: <field>: <why>`, every field in details.
  serveRoute(app, listRoute, async (c) => {
    const query = c.req.valid('query');
    return c.json(await searchDeadLetters(deps, filterOf(query), { limit: query.limit, cursor: query.cursor }), 200);
  });

  // Not bounded by REQUEST_TIMEOUT_MS: a large replay takes as many batches as it needs.
  serveRoute(app, replayRoute, async (c) => {
    const body = await readJson(c, replaySchema);
    const selection: ReplaySelection = body.ids ? { ids: body.ids } : { all: true, filter: filterOf(body) };
    const requestedBy = c.get('apiKey')?.name ?? NO_API_KEY;
    return c.json(await replayAndRecord(deps, selection, { dryRun: body.dry_run, requestedBy }), 200);
  });

  return app;
}

/** Only the filters given, so a recorded replay shows exactly what was asked. */
function filterOf(f: DeadLetterFilter): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (f.channel !== undefined) filter.channel = f.channel;
  if (f.error !== undefined) filter.error = f.error;
  if (f.since !== undefined) filter.since = f.since;
  if (f.until !== undefined) filter.until = f.until;
  return filter;
}
