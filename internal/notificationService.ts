import { createHash, randomUUID } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import type { Channels } from './channels/channels.ts';
import { providerFor } from './channels/channels.ts';
import type { Sql } from './database.ts';
import { batcherFor } from './createBatcher.ts';
import { runWithDeadline } from './deadline.ts';
import { NotFoundError, ValidationError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { CreateNotification, NotificationRow } from './notification.ts';
import type { NotificationQueue } from './queue.ts';
import {
  findNotification,
  insertNotification,
  type IdempotencyClaim,
  type InsertResult,
  type NewNotification,
} from './repository/notifications.ts';

export interface NotificationServiceDeps {
  sql: Sql;
  queue: NotificationQueue;
  channels: Channels;
  logger: Logger;
  /** How long a request waits for PostgreSQL before it is refused with 503. */
  requestTimeoutMs: number;
}

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Stores a notification and queues it. Answers only once the row is committed; the queue push is
 * best effort, since the sweeper queues any due PENDING row whose push was lost.
 */
export async function createNotification(
  deps: NotificationServiceDeps,
  request: CreateNotification,
  idempotencyKey?: string,
): Promise<InsertResult> {
  const provider = providerFor(deps.channels, request.type);
  const recipient = provider.checkAddress(request.to);
  const idempotency = idempotencyKey === undefined ? undefined : { key: checkKey(idempotencyKey), requestHash: hashRequest(request) };
  const notification = {
    id: randomUUID(),
    user_id: request.user_id,
    type: request.type,
    title: request.title ?? null,
    body: request.body,
    recipient,
    data: request.data ?? null,
  };
  if (idempotency === undefined) return createUnkeyed(deps, notification);
  return createKeyed(deps, notification, idempotency);
}

/**
 * Without a key, the request joins the API's current batch: one transaction and one LPUSH shared
 * with the requests arriving alongside it. The batcher pushes the ids after COMMIT.
 */
async function createUnkeyed(deps: NotificationServiceDeps, notification: NewNotification): Promise<InsertResult> {
  const batcher = batcherFor(deps);
  const row = await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) => batcher.create(notification, beforeCommit));
  return { row, created: true };
}

/**
 * With a key, a transaction of its own: the key's unique index makes a concurrent repeat wait for
 * this one, which in a shared batch would hold up every other request of it.
 */
async function createKeyed(
  deps: NotificationServiceDeps,
  notification: NewNotification,
  idempotency: IdempotencyClaim,
): Promise<InsertResult> {
  const result = await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) =>
    insertNotification(deps.sql, notification, idempotency, beforeCommit),
  );
  if (result.created) {
    await deps.queue.push([result.row.id]).catch((err: unknown) => {
      deps.logger.warn({ err, notificationId: result.row.id }, 'queue push failed; the sweeper will queue it');
    });
  }
  return result;
}

export async function getNotification(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>, id: string): Promise<NotificationRow> {
  const row = await runWithDeadline(deps.requestTimeoutMs, () => findNotification(deps.sql, id));
  if (!row) throw new NotFoundError(`notification ${id} not found`);
  return row;
}

function checkKey(key: string): string {
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new ValidationError(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, 'invalid_idempotency_key');
  }
  return key;
}

/** Same request, same hash, whatever the order of its JSON keys. */
function hashRequest(request: CreateNotification): string {
  return createHash('sha256').update(stringify(request) ?? '').digest('hex');
}
