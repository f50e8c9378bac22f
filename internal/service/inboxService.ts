import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { InboxListing, MarkedRead, UnreadCount } from '../domain/inbox.ts';
import { toInboxItemJson } from '../domain/inboxItem.ts';
import { archive, countUnread, listInbox, markAllRead, markRead, type InboxPage } from '../repository/inbox.ts';

export type { InboxPage };

type Deps = { sql: Sql; requestTimeoutMs: number };

/** A page of a user's inbox, newest first, with the unread count. */
export async function readInbox(deps: Deps, userId: string, page: InboxPage): Promise<InboxListing> {
  return runWithDeadline(deps.requestTimeoutMs, async () => {
    const [items, unread] = await Promise.all([listInbox(deps.sql, userId, page), countUnread(deps.sql, userId)]);
    const last = items.at(-1);
    return {
      items: items.map(toInboxItemJson),
      next_cursor: items.length === page.limit && last ? String(last.seq) : null,
      unread,
    };
  });
}

export async function unreadCount(deps: Deps, userId: string): Promise<UnreadCount> {
  return { unread: await runWithDeadline(deps.requestTimeoutMs, () => countUnread(deps.sql, userId)) };
}

export async function readItem(deps: Deps, userId: string, notificationId: string): Promise<void> {
  const found = await runWithDeadline(deps.requestTimeoutMs, () => markRead(deps.sql, userId, notificationId));
  if (!found) throw new NotFoundError(`no inbox item ${notificationId} for this user`);
}

export async function readAll(deps: Deps, userId: string): Promise<MarkedRead> {
  return { marked: await runWithDeadline(deps.requestTimeoutMs, () => markAllRead(deps.sql, userId)) };
}

export async function archiveItem(deps: Deps, userId: string, notificationId: string): Promise<void> {
  const found = await runWithDeadline(deps.requestTimeoutMs, () => archive(deps.sql, userId, notificationId));
  if (!found) throw new NotFoundError(`no inbox item ${notificationId} for this user`);
}
