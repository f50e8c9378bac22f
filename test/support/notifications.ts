import type { Sql } from '../../internal/platform/database.ts';

export interface CreatedNotification {
  id: string;
  status: string;
  retry_count: number;
}

/**
 * POSTs a notification to a running API (with `headers`, an API key say) and returns the created
 * notification; fails on anything but 201.
 */
export async function postNotification(apiUrl: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<CreatedNotification> {
  const res = await fetch(`${apiUrl}/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /notifications answered ${res.status}: ${text}`);
  return JSON.parse(text) as CreatedNotification;
}

export interface StoredNotification {
  id: string;
  status: string;
  retry_count: number;
  error_reason: string | null;
  attempt: number;
  locked_by: string | null;
}

/** The notification's row as PostgreSQL holds it. */
export async function storedNotification(sql: Sql, id: string): Promise<StoredNotification> {
  const [row] = await sql<StoredNotification[]>`
    select id, status, retry_count, error_reason, attempt, locked_by from notifications where id = ${id}`;
  if (!row) throw new Error(`notification ${id} is not in the database`);
  return row;
}

export interface StoredAttempt {
  attempt: number;
  worker_id: string | null;
  outcome: string;
  error: string | null;
}

/** The finished attempts recorded for a notification, in attempt order. */
export async function storedAttempts(sql: Sql, id: string): Promise<StoredAttempt[]> {
  return sql<StoredAttempt[]>`
    select attempt, worker_id, outcome, error from notification_attempts
    where notification_id = ${id} order by attempt`;
}

/** Resolves once the notification's row has `status`, or rejects naming the status it last had. */
export async function statusReached(sql: Sql, id: string, status: string, timeoutMs = 30_000): Promise<StoredNotification> {
  const deadline = Date.now() + timeoutMs;
  let last: StoredNotification | undefined;
  for (;;) {
    last = await storedNotification(sql, id);
    if (last.status === status) return last;
    if (Date.now() > deadline) {
      throw new Error(`notification ${id} did not reach ${status} within ${timeoutMs} ms; it is ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Milliseconds from the row's creation to the claim of the attempt that delivered it. */
export async function msFromCreationToDeliveringClaim(sql: Sql, id: string): Promise<number> {
  const [row] = await sql<{ ms: number }[]>`
    select (extract(epoch from (a.started_at - n.created_at)) * 1000)::float8 as ms
    from notifications n join notification_attempts a on a.notification_id = n.id and a.outcome = 'SENT'
    where n.id = ${id}`;
  if (!row) throw new Error(`notification ${id} has no SENT attempt`);
  return row.ms;
}
