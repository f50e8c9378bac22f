import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { ForbiddenError, TooManyRequestsError, UnauthorizedError } from '../domain/errors.ts';
import { findLiveApiKey, insertApiKey, touchApiKeys, type ApiKeyRow, type Scope } from '../repository/apiKeys.ts';

export type { ApiKeyRow, Scope };

/** Keys look like `hk_<43 characters>`: 256 random bits, URL-safe base64. */
const KEY_PREFIX = 'hk_';
const SHOWN_CHARACTERS = 11;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Creates a key; the key itself is in the answer only, never stored. */
export async function createApiKey(sql: Sql, name: string, scopes: Scope[]): Promise<{ key: string; row: ApiKeyRow }> {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const row = await insertApiKey(sql, { id: randomUUID(), name, keyHash: hashApiKey(key), prefix: key.slice(0, SHOWN_CHARACTERS), scopes });
  return { key, row };
}

/** How long a key's check is remembered: a revoked key stops working within this time. */
export const CACHE_TTL_MS = 10_000;
/**
 * Keys remembered at most, live and unknown alike; past it the memory starts over, so a flood of
 * bad keys cannot grow it (the failed checks per address bound how fast one client can flood it).
 */
const CACHE_MAX_ENTRIES = 10_000;
/** How often last_used_at is written for the keys used since. */
const TOUCH_INTERVAL_MS = 60_000;

interface Remembered {
  key: ApiKeyRow | undefined;
  until: number;
}

export interface ApiKeyVerifierOptions {
  /**
   * Counts failed checks per client address (AUTH_FAILURES_PER_MINUTE); past its points, a key
   * this process has not found live is refused with 429, without a look in PostgreSQL. Absent: not counted.
   */
  failures?: RateLimiterAbstract;
}

/**
 * Checks producers' API keys against PostgreSQL, remembering each answer (a live key, or none) for
 * a few seconds so a busy API does not add a query to every request and a client repeating a bad
 * key costs one query. Keys are compared by their SHA-256, never stored.
 */
export class ApiKeyVerifier {
  private readonly remembered = new Map<string, Remembered>();
  private readonly used = new Set<string>();
  private lastTouch = Date.now();

  constructor(
    private readonly sql: Sql,
    private readonly options: ApiKeyVerifierOptions = {},
  ) {}

  /**
   * The key's row when it is live and carries `scope`; 401 when it is not a live key, 403 when it
   * lacks the scope, 429 when `clientAddress` has failed too many checks lately and the key is not
   * one this process has found live.
   */
  async authorize(key: string | undefined, scope: Scope, clientAddress?: string): Promise<ApiKeyRow> {
    if (!key) throw new UnauthorizedError('send an API key as "Authorization: Bearer <key>" (create one with npm run apikey -- create NAME)');
    const row = await this.lookup(key, clientAddress);
    if (!row) {
      if (clientAddress) await this.options.failures?.penalty(clientAddress);
      throw new UnauthorizedError('API key not recognised, or revoked');
    }
    if (!carriesScope(row, scope)) {
      throw new ForbiddenError(`API key "${row.name}" lacks the "${scope}" scope (it has ${row.scopes.join(', ')})`);
    }
    this.noteUse(row.id);
    return row;
  }

  private async lookup(key: string, clientAddress: string | undefined): Promise<ApiKeyRow | undefined> {
    const hash = hashApiKey(key);
    const now = Date.now();
    const cached = this.remembered.get(hash);
    if (cached && cached.until > now) {
      if (!cached.key && clientAddress) await this.refuseWhenOverFailures(clientAddress);
      return cached.key;
    }
    // A key found live before is looked up again whatever its address did: behind a proxy every
    // client shares one address, and a guesser there must not lock out the producers whose keys work.
    if (!cached?.key && clientAddress) await this.refuseWhenOverFailures(clientAddress);
    const row = await findLiveApiKey(this.sql, hash);
    if (this.remembered.size >= CACHE_MAX_ENTRIES) this.remembered.clear();
    this.remembered.set(hash, { key: row, until: now + CACHE_TTL_MS });
    return row;
  }

  /** 429, before any query, for an address that failed more checks than the limit allows lately. */
  private async refuseWhenOverFailures(clientAddress: string): Promise<void> {
    const failures = this.options.failures;
    const counted = failures && (await failures.get(clientAddress));
    if (failures && counted && counted.consumedPoints >= failures.points) {
      throw new TooManyRequestsError(
        `too many failed API key checks from this address: at most ${failures.points} a minute`,
        counted.msBeforeNext,
      );
    }
  }

  private noteUse(id: string): void {
    this.used.add(id);
    if (Date.now() - this.lastTouch < TOUCH_INTERVAL_MS) return;
    this.lastTouch = Date.now();
    const ids = [...this.used];
    this.used.clear();
    touchApiKeys(this.sql, ids).catch(() => {});
  }
}

/** Whether the key may act with `scope`: it carries it, or `admin`, which covers every scope. */
export function carriesScope(row: Pick<ApiKeyRow, 'scopes'>, scope: Scope): boolean {
  return row.scopes.includes(scope) || row.scopes.includes('admin');
}

/** Checks a request's key as `authorize` does, refused with 503 when PostgreSQL cannot say within `requestTimeoutMs`. */
export async function authorizeRequest(
  deps: { verifier: ApiKeyVerifier; requestTimeoutMs: number },
  request: { key: string | undefined; scope: Scope; clientAddress?: string },
): Promise<ApiKeyRow> {
  return runWithDeadline(deps.requestTimeoutMs, () => deps.verifier.authorize(request.key, request.scope, request.clientAddress));
}
