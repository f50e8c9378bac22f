import type { Sql } from '../platform/database.ts';

/**
 * The session-level advisory lock whose holder runs the maintenance jobs, as the two int4 keys
 * (classid, objid) pg_locks shows: 'hrld' and 1. An advisory lock belongs to one PostgreSQL
 * session, so every function here must be given a client with one connection of its own (see
 * `LeaderElection`); on a shared pool the lock would land on whichever connection ran the query.
 */
const LOCK_CLASS = 0x68726c64;
const LOCK_ID = 1;

/**
 * Takes the lock if nobody holds it, and if taken asks PostgreSQL to end this session once it has
 * sat idle for `idleLimitMs`: a holder that is alive but frozen (stopped, swapped out, cut off by a
 * network that drops packets without closing the connection) thereby loses the lock too, where
 * PostgreSQL would otherwise keep the session, and the lock, for as long as TCP stays quiet.
 */
export async function tryTakeMaintenanceLock(session: Sql, idleLimitMs: number): Promise<boolean> {
  const [row] = await session<{ taken: boolean }[]>`
    select pg_try_advisory_lock(${LOCK_CLASS}::int, ${LOCK_ID}::int) as taken`;
  if (!row?.taken) return false;
  await session`select set_config('idle_session_timeout', ${String(idleLimitMs)}, false)`;
  return true;
}

/**
 * Whether this very session still holds the lock. A client that lost its connection reconnects
 * without saying so, into a new session that holds nothing: asking pg_locks about the current
 * backend is what tells the two apart. The query also keeps the session from going idle.
 */
export async function holdsMaintenanceLock(session: Sql): Promise<boolean> {
  const [row] = await session<{ held: boolean }[]>`
    select exists (
      select 1 from pg_locks
      where locktype = 'advisory' and classid = ${LOCK_CLASS}::oid and objid = ${LOCK_ID}::oid and objsubid = 2
        and pid = pg_backend_pid() and granted
    ) as held`;
  return row?.held ?? false;
}

/** Lets the lock go however many times this session took it, and lifts the idle limit. */
export async function releaseMaintenanceLock(session: Sql): Promise<void> {
  await session`select pg_advisory_unlock_all(), set_config('idle_session_timeout', '0', false)`;
}
