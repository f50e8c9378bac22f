import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { FanoutJson, FanoutWithMembersJson } from '../domain/fanout.ts';
import { countFanoutStatuses, findFanout, type FanoutMember, type FanoutRow } from '../repository/fanouts.ts';

/** How far a fan-out got: what it sends, and where its notifications are. */
export async function getFanout(deps: { sql: Sql; requestTimeoutMs: number }, id: string): Promise<FanoutJson> {
  return runWithDeadline(deps.requestTimeoutMs, async () => {
    const fanout = await findFanout(deps.sql, id);
    if (!fanout) throw new NotFoundError(`fan-out ${id} not found`);
    return toFanoutJson(fanout, await countFanoutStatuses(deps.sql, id));
  });
}

/** A fan-out as the API shows it, with its notifications counted by status. */
export function toFanoutJson(fanout: FanoutRow, counts: FanoutJson['counts']): FanoutJson {
  return {
    fanout_id: fanout.id,
    topic: fanout.topic,
    type: fanout.type,
    status: fanout.status,
    created_count: fanout.created_count,
    counts,
    created_at: fanout.created_at.toISOString(),
    finished_at: fanout.finished_at?.toISOString() ?? null,
  };
}

/** A list of users' fan-out, created in one transaction: its notifications are all known, counted here. */
export function toFanoutWithMembersJson(fanout: FanoutRow, members: FanoutMember[]): FanoutWithMembersJson {
  const counts: FanoutJson['counts'] = {};
  for (const m of members) counts[m.status] = (counts[m.status] ?? 0) + 1;
  return { ...toFanoutJson(fanout, counts), notifications: members };
}
