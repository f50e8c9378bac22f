import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { timestampSchema } from '../../domain/timestamp.ts';
import { replayAndRecord, type ReplaySelection } from '../../service/deadLetterReplays.ts';
import { searchDeadLetters, type DeadLetterFilter } from '../../service/deadLetterSearch.ts';
import { ValidationError } from '../../domain/errors.ts';
import { CHANNELS } from '../../domain/notification.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { isStorableText, UNSTORABLE_MESSAGE } from '../../domain/storableText.ts';
import { limitBody, readJson } from '../request/jsonBody.ts';

/** Ids one `{ids: [...]}` replay may name; `{all: true}` with filters reaches any number. */
export const MAX_REPLAY_IDS = 10_000;

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

/** `GET /admin/dead-letters` query; exported for the OpenAPI document. */
export const listQuerySchema = z
  .object({
    ...filterFields,
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().min(1).max(200).optional(),
  })
  .superRefine(sinceBeforeUntil);

/** `{ids: [...]}` or `{all: true, channel?, error?, since?, until?}`, with `dry_run`. */
export const replaySchema = z
  .object({
    ids: z.array(z.guid()).min(1).max(MAX_REPLAY_IDS).optional(),
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

/**
 * Operators' routes, mounted under `/admin` behind the admin scope: dead letters listed from
 * PostgreSQL and replayed over HTTP, each replay recorded under the API key's name.
 */
export function adminRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'queue' | 'requestTimeoutMs'>): Hono {
  const app = new Hono();

  app.get('/dead-letters', async (c) => {
    const query = parseQuery(c);
    return c.json(await searchDeadLetters(deps, filterOf(query), { limit: query.limit, cursor: query.cursor }));
  });

  // Not bounded by REQUEST_TIMEOUT_MS: a large replay takes as many batches as it needs.
  app.post('/dead-letters/replay', limitBody, async (c) => {
    const body = await readJson(c, replaySchema);
    const selection: ReplaySelection = body.ids ? { ids: body.ids } : { all: true, filter: filterOf(body) };
    const requestedBy = c.get('apiKey')?.name ?? NO_API_KEY;
    return c.json(await replayAndRecord(deps, selection, { dryRun: body.dry_run, requestedBy }));
  });

  return app;
}

/** The listing's query; an empty parameter (`?channel=`) counts as absent. */
function parseQuery(c: Context): z.infer<typeof listQuerySchema> {
  const given = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ''));
  const result = listQuerySchema.safeParse(given);
  if (!result.success) {
    const details = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const first = details[0]!;
    throw new ValidationError(`invalid query: ${first.path || 'query'}: ${first.message}`, 'invalid_request', details);
  }
  return result.data;
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
