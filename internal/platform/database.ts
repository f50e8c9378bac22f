import postgres from 'postgres';

export type Sql = postgres.Sql;
/** A connection inside `sql.begin(...)`. */
export type Tx = postgres.TransactionSql;

export interface DatabaseOptions {
  /** Pool size. */
  max?: number;
  /** Seconds to wait for a connection before a query fails. */
  connectTimeoutSeconds?: number;
  /**
   * False for a pool whose statements all read rows by key or through an index made for them (the
   * worker's): PostgreSQL then plans a whole-table scan only where nothing else can answer. A
   * prepared statement keeps the plan made at its first executions; made while a table was nearly
   * empty (a fresh database), that plan scanned the whole table on every claim until the next
   * ANALYZE, which at a few thousand rows took PostgreSQL's CPU for itself.
   */
  seqScans?: boolean;
}

/** The longest a pool connection waits before it tries PostgreSQL again after a failed connection. */
const MAX_RECONNECT_DELAY_SECONDS = 1;

/**
 * Seconds before a pool connection reconnects, given the failed connections so far: doubling from
 * 50 ms up to the cap, with jitter. postgres.js's own default climbs to 20 s, so a process that kept
 * working through an outage sat idle for up to 20 s after PostgreSQL was back.
 */
function reconnectDelaySeconds(failures: number): number {
  return Math.min(0.05 * 2 ** failures, MAX_RECONNECT_DELAY_SECONDS) * (0.5 + Math.random() / 2);
}

/** A postgres.js pool. Rows keep PostgreSQL's snake_case; the API shape is built in `notification.ts`. */
export function connectDatabase(url: string, options: DatabaseOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    backoff: reconnectDelaySeconds,
    onnotice: () => {},
    ...(options.seqScans === false ? { connection: { enable_seqscan: 'off' } } : {}),
  });
}

/**
 * Creates the database named in `url` when it does not exist yet, so a fresh machine needs no
 * manual `createdb`. Safe when several processes race to do it.
 */
export async function ensureDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) throw new Error(`DATABASE_URL names no database: add one, e.g. /notifications`);
  const maintenanceUrl = new URL(url);
  maintenanceUrl.pathname = '/postgres';
  const sql = connectDatabase(maintenanceUrl.toString(), { max: 1 });
  try {
    const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
    if (exists) return;
    await sql`create database ${sql(name)}`.catch((err: unknown) => {
      // 42P04 duplicate_database, 23505 when two creators collide in pg_database's index.
      const code = (err as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw err;
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}
