import { createHash, randomUUID } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import type { Channels } from '../channels/channelRegistry.ts';
import { providerFor } from '../channels/channelRegistry.ts';
import type { Sql } from '../platform/database.ts';
import { batcherFor } from './notificationInsertBatcher.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError, ValidationError } from '../domain/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { FanoutJson, FanoutWithMembersJson } from '../domain/fanout.ts';
import { toNotificationJson, type Channel, type CreateNotification, type NotificationJson, type NotificationRow } from '../domain/notification.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { resolveAddresses } from './addressBook.ts';
import { toFanoutJson, toFanoutWithMembersJson } from './fanoutService.ts';
import type { ChannelProvider } from '../channels/channelProvider.ts';
import {
  findFanoutResult,
  insertTopicFanout,
  insertUserFanout,
  type FanoutInsertResult,
  type NewFanout,
} from '../repository/fanouts.ts';
import { findIdempotencyKey, idempotencyOwner, type IdempotencyClaim } from '../repository/idempotencyKeys.ts';
import { findNotification, insertNotification, type InsertResult, type NewNotification } from '../repository/notifications.ts';

/**
 * Hears how many notifications a create committed (the API process's metrics count them). Declared
 * here so the service knows no metrics library; the API's metrics fit it as they are.
 */
export interface CreationCounter {
  notificationsCreated(channel: Channel, count: number): void;
}

export interface NotificationServiceDeps {
  sql: Sql;
  queue: NotificationQueue;
  channels: Channels;
  logger: Logger;
  /** How long a request waits for PostgreSQL before it is refused with 503. */
  requestTimeoutMs: number;
  /** Counts the notifications created; absent, nothing is counted. */
  metrics?: CreationCounter;
}

/** Who asks for a create. */
export interface Producer {
  /** The API key's id; null while API keys are off (AUTH_DISABLED). Idempotency-Keys are this producer's own. */
  apiKeyId: string | null;
  /**
   * Whether the producer may read users' profiles (the `read` scope). One that may not is not
   * answered the address a notification took from the profile.
   */
  readsProfiles: boolean;
}

/** The longest Idempotency-Key header a create accepts. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** What a create produced: one notification, or a fan-out (a list of users, or a topic's subscribers). */
type CreateOutcome =
  | { kind: 'notification'; row: NotificationRow; created: boolean }
  | ({ kind: 'fanout' } & FanoutInsertResult);

/**
 * What a create answers (`created` false: an idempotent repeat): the notification, a list of
 * users' fan-out with every notification it created, or a topic's fan-out, whose notifications
 * workers create after the answer.
 */
export type CreateAnswer =
  | { kind: 'notification'; created: boolean; notification: NotificationJson }
  | { kind: 'users'; created: boolean; fanout: FanoutWithMembersJson }
  | { kind: 'topic'; created: boolean; fanout: FanoutJson };

/**
 * Stores what a `POST /notifications` asks for and queues it. Answers only once the rows are
 * committed; the queue push is best effort, since maintenance queues any due PENDING row whose
 * push was lost.
 */
export async function createNotification(
  deps: NotificationServiceDeps,
  request: CreateNotification,
  producer: Producer,
  idempotencyKey?: string,
): Promise<CreateAnswer> {
  const idempotency =
    idempotencyKey === undefined
      ? undefined
      : { owner: idempotencyOwner(producer.apiKeyId), key: checkKey(idempotencyKey), requestHash: hashRequest(request) };
  return toAnswer(await create(deps, request, idempotency), shownAddress(request, producer));
}

/**
 * Whether the answer may show the address delivered to. The request's own `to` the producer knows
 * already; an address taken from the user's profile is shown only to a producer that may read
 * profiles (the others get `null`, as `GET /users/:id` refuses them).
 */
function shownAddress(request: CreateNotification, producer: Producer): boolean {
  return request.to !== undefined || producer.readsProfiles;
}

/**
 * The outcome as JSON. A topic's fan-out is answered from what was stored, with nothing counted
 * yet, rather than read again: a failing second read must not refuse what is stored.
 */
function toAnswer(outcome: CreateOutcome, showAddress: boolean): CreateAnswer {
  const { created } = outcome;
  if (outcome.kind === 'notification') {
    const notification = toNotificationJson(outcome.row);
    return { kind: 'notification', created, notification: showAddress ? notification : { ...notification, to: null } };
  }
  if (outcome.fanout.topic !== null) return { kind: 'topic', created, fanout: toFanoutJson(outcome.fanout, {}) };
  return { kind: 'users', created, fanout: toFanoutWithMembersJson(outcome.fanout, outcome.members) };
}

async function create(deps: NotificationServiceDeps, request: CreateNotification, idempotency: IdempotencyClaim | undefined): Promise<CreateOutcome> {
  if (idempotency) {
    // A repeat is answered from what the first request stored, whatever changed since.
    const earlier = await runWithDeadline(deps.requestTimeoutMs, () => findEarlierOutcome(deps.sql, idempotency));
    if (earlier) return earlier;
  }
  const provider = providerFor(deps.channels, request.type);
  provider.checkContent?.({ title: request.title ?? null, body: request.body, html: request.html ?? null, data: request.data ?? null });
  if (request.user_ids) return createForUsers(deps, provider, request, request.user_ids, idempotency);
  if (request.topic !== undefined) return createForTopic(deps, request, request.topic, idempotency);
  const userId = request.user_id!;
  const addresses = await resolveAddresses(deps, provider, [userId], request.to);
  const notification = newNotification(request, userId, addresses.get(userId) ?? null);
  const result = idempotency === undefined ? await createUnkeyed(deps, notification) : await createKeyed(deps, notification, idempotency);
  if (result.created) deps.metrics?.notificationsCreated(request.type, 1);
  return { kind: 'notification', ...result };
}

/** What the first request with this key created, or undefined for a key not seen (or not yet committed). */
async function findEarlierOutcome(sql: Sql, idempotency: IdempotencyClaim): Promise<CreateOutcome | undefined> {
  const earlier = await findIdempotencyKey(sql, idempotency);
  if (earlier?.notificationId) {
    const row = await findNotification(sql, earlier.notificationId);
    return row && { kind: 'notification', row, created: false };
  }
  if (earlier?.fanoutId) {
    const result = await findFanoutResult(sql, earlier.fanoutId);
    return result && { kind: 'fanout', ...result };
  }
  return undefined;
}

function newNotification(request: CreateNotification, userId: string, recipient: string | null, fanoutId?: string): NewNotification {
  return {
    id: randomUUID(),
    user_id: userId,
    type: request.type,
    title: request.title ?? null,
    body: request.body,
    recipient,
    html: request.html ?? null,
    data: request.data ?? null,
    critical: request.critical ?? false,
    ...(fanoutId === undefined ? {} : { fanout_id: fanoutId }),
  };
}

function newFanout(request: CreateNotification, topic: string | null): NewFanout {
  return {
    id: randomUUID(),
    topic,
    type: request.type,
    title: request.title ?? null,
    body: request.body,
    html: request.html ?? null,
    data: request.data ?? null,
    critical: request.critical ?? false,
  };
}

/**
 * One notification per listed user, all in one transaction and queued with one LPUSH. Every user
 * must have an address for the channel, or nothing is created.
 */
async function createForUsers(
  deps: NotificationServiceDeps,
  provider: ChannelProvider,
  request: CreateNotification,
  listed: string[],
  idempotency: IdempotencyClaim | undefined,
): Promise<CreateOutcome> {
  const userIds = [...new Set(listed)];
  const addresses = await resolveAddresses(deps, provider, userIds);
  const fanout = newFanout(request, null);
  const notifications = userIds.map((id) => newNotification(request, id, addresses.get(id) ?? null, fanout.id));
  const result = await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) =>
    insertUserFanout(deps.sql, fanout, notifications, idempotency, beforeCommit),
  );
  if (result.created) {
    await pushBestEffort(deps, result.members.map((m) => m.id));
    deps.metrics?.notificationsCreated(request.type, result.members.length);
  }
  return { kind: 'fanout', ...result };
}

/**
 * A topic's subscribers may be many: the request only records the fan-out, and workers create
 * its notifications in bounded batches (`FanoutRunner`), so the answer does not wait for them.
 */
async function createForTopic(
  deps: NotificationServiceDeps,
  request: CreateNotification,
  topic: string,
  idempotency: IdempotencyClaim | undefined,
): Promise<CreateOutcome> {
  const result = await runWithDeadline(deps.requestTimeoutMs, (beforeCommit) =>
    insertTopicFanout(deps.sql, newFanout(request, topic), idempotency, beforeCommit),
  );
  return { kind: 'fanout', ...result };
}

async function pushBestEffort(deps: NotificationServiceDeps, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await deps.queue.push(ids).catch((err: unknown) => {
    deps.logger.warn({ err, notifications: ids.length }, 'queue push failed; maintenance will queue them');
  });
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
  if (result.created) await pushBestEffort(deps, [result.row.id]);
  return result;
}

export async function getNotification(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>, id: string): Promise<NotificationJson> {
  const row = await runWithDeadline(deps.requestTimeoutMs, () => findNotification(deps.sql, id));
  if (!row) throw new NotFoundError(`notification ${id} not found`);
  return toNotificationJson(row);
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
