import type { Sql } from '../../internal/platform/database.ts';
import { claimBatch, type ClaimedNotification, type InboxDelivery } from '../../internal/repository/claims.ts';

/** The channels a worker delivers in its claim, as production's channel registry has them. */
const INBOX_CHANNELS = ['IN_APP'] as const;

/**
 * Claims one notification as a worker's batch claim does. Undefined when the row is not claimable
 * (taken, finished, not due, unknown), or when the claim itself delivered it (IN_APP).
 */
export async function claimOne(sql: Sql, id: string, workerId: string, leaseMs: number): Promise<ClaimedNotification | undefined> {
  return (await claimBatch(sql, [id], workerId, leaseMs, INBOX_CHANNELS)).claimed[0];
}

/** Delivers IN_APP notifications as a worker's claim does: inbox item and SENT in one statement. */
export async function deliverToInboxes(sql: Sql, ids: string[], workerId = 'inbox-test-worker'): Promise<InboxDelivery[]> {
  return (await claimBatch(sql, ids, workerId, 30_000, INBOX_CHANNELS)).inboxed;
}
