import type { Sql } from '../platform/database.ts';
import { claimKey, type Claim } from './claims.ts';
import type { FanoutClaim } from './fanouts.ts';

/** What one renewal found, as sets of `claimKey`s; a claim in neither was busy and is tried again next time. */
export interface ClaimRenewal {
  /** Leased for another `leaseMs` from the statement's time. */
  renewed: Set<string>;
  /** No longer this worker's attempt: finished, released, or taken over after its lease ran out. */
  lost: Set<string>;
}

/**
 * Extends the leases of the claims a live worker holds, in one statement, each fenced by its id,
 * attempt and `workerId`, so a renewal never extends another worker's attempt or a newer one. A
 * lease that has run out is not renewed: from then on the claim is the rescuer's to take over
 * (`recordFailure` with `LEASE_EXPIRED` takes only a lease that has run out), and the worker, which
 * stopped hearing renewals a lease ago, gives it up.
 *
 * `skip locked`: a row locked by another statement is left alone rather than waited for, so the
 * renewal never queues behind the work it protects. The lock is this worker's own completion (which
 * ends the claim when it commits) or a rescuer's fenced update (which ends it, and the next renewal
 * finds it lost); the row as last committed says whether the claim is still held.
 */
export async function renewClaims(sql: Sql, workerId: string, claims: Pick<Claim, 'id' | 'attempt'>[], leaseMs: number): Promise<ClaimRenewal> {
  if (claims.length === 0) return { renewed: new Set(), lost: new Set() };
  const rows = await sql<{ id: string; attempt: number; renewed: boolean; held: boolean }[]>`
    with held as (
      select * from unnest(${claims.map((c) => c.id)}::uuid[], ${claims.map((c) => c.attempt)}::int[]) as h(id, attempt)
    ), free as (
      select n.id
      from notifications n join held h on n.id = h.id and n.attempt = h.attempt
      where n.status = 'PROCESSING' and n.locked_by = ${workerId} and n.lease_expires_at > now()
      for update of n skip locked
    ), renewed as (
      update notifications n
      set lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000})
      from free
      where n.id = free.id
      returning n.id
    )
    select h.id, h.attempt,
           exists (select 1 from renewed r where r.id = h.id) as renewed,
           exists (
             select 1 from notifications n
             where n.id = h.id and n.attempt = h.attempt and n.status = 'PROCESSING' and n.locked_by = ${workerId}
           ) as held
    from held h`;
  const result: ClaimRenewal = { renewed: new Set(), lost: new Set() };
  for (const row of rows) {
    if (row.renewed) result.renewed.add(claimKey(row));
    else if (!row.held) result.lost.add(claimKey(row));
  }
  return result;
}

/** What renewing a fan-out's hold found: extended, busy (locked by a statement under way), or lost. */
export type FanoutRenewal = 'renewed' | 'busy' | 'lost';

/**
 * Extends a RUNNING fan-out's hold by `leaseMs`, fenced like `renewClaims` (its attempt and
 * `workerId`, a lease not yet run out, `skip locked`): the fan-out's own batch statement holds the
 * row while it runs, and extends the lease itself when it commits.
 */
export async function renewFanoutLease(sql: Sql, workerId: string, claim: FanoutClaim, leaseMs: number): Promise<FanoutRenewal> {
  const [row] = await sql<{ renewed: boolean; held: boolean }[]>`
    with renewed as (
      update fanouts set lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000})
      where id = (
        select id from fanouts
        where id = ${claim.id} and attempt = ${claim.attempt} and locked_by = ${workerId}
          and status = 'RUNNING' and lease_expires_at > now()
        for update skip locked
      )
      returning id
    )
    select exists (select 1 from renewed) as renewed,
           exists (
             select 1 from fanouts
             where id = ${claim.id} and attempt = ${claim.attempt} and locked_by = ${workerId} and status = 'RUNNING'
           ) as held`;
  if (row?.renewed) return 'renewed';
  return row?.held ? 'busy' : 'lost';
}
