import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { Status } from '../domain/notification.ts';
import { countFanoutStatuses, findFanout, type FanoutRow } from '../repository/fanouts.ts';

export type { FanoutMember } from '../repository/fanouts.ts';

export interface FanoutView {
  fanout: FanoutRow;
  /** The fan-out's notifications by status. */
  counts: Partial<Record<Status, number>>;
}

export async function getFanout(deps: { sql: Sql; requestTimeoutMs: number }, id: string): Promise<FanoutView> {
  return runWithDeadline(deps.requestTimeoutMs, async () => {
    const fanout = await findFanout(deps.sql, id);
    if (!fanout) throw new NotFoundError(`fan-out ${id} not found`);
    return { fanout, counts: await countFanoutStatuses(deps.sql, id) };
  });
}
