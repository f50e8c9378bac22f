import type { Sql } from '../platform/database.ts';
import { toInboxItemJson, type InboxItemJson } from '../domain/inboxItem.ts';
import type { InboxHub } from '../queue/inboxHub.ts';
import type { Logger } from '../platform/logger.ts';
import { listInboxAfter } from '../repository/inbox.ts';

/** What a live connection sends its client. */
export type InboxEvent =
  | { type: 'notification'; item: InboxItemJson }
  /** Everything up to `seq` has been sent; from here on items arrive as they are delivered. */
  | { type: 'caught_up'; seq: number };

/** A transport (WebSocket, Server-Sent Events) as the session sees it. */
export interface InboxSink {
  /** Queues an event for the client; false when the client is too far behind to take more. */
  send(event: InboxEvent): boolean;
  close(reason: string): void;
}

/** Items read from PostgreSQL per catch-up query. */
const CATCH_UP_PAGE = 200;

export interface InboxSessionDeps {
  sql: Sql;
  hub: InboxHub;
  logger: Logger;
}

/**
 * One live connection of one user. It subscribes first and reads PostgreSQL second, so an item
 * is either committed before the read (and read) or published after the subscription (and
 * heard): no gap. Items go out in seq order, each once: seq numbers a user's items in commit
 * order, so "everything after the last seq sent" is exact. A live item that skips a number means
 * another is still on its way or was lost; the session then reads what it missed from PostgreSQL.
 */
export class InboxSession {
  private lastSeq: number;
  private catchingUp = false;
  private catchUpAgain = false;
  private readonly heard: InboxItemJson[] = [];
  private closed = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly deps: InboxSessionDeps,
    private readonly userId: string,
    /** The last seq the client has; 0 for a client that has nothing. */
    sinceSeq: number,
    private readonly sink: InboxSink,
  ) {
    this.lastSeq = sinceSeq;
  }

  /** Subscribes and sends what the client missed, then `caught_up`. Rejects when Redis or PostgreSQL cannot. */
  async start(): Promise<void> {
    this.unsubscribe = await this.deps.hub.subscribe(this.userId, {
      onItem: (item) => this.hear(item),
      onResync: () => void this.catchUp(),
    });
    if (this.closed) this.unsubscribe();
    await this.catchUp({ failLoudly: true });
    this.emit({ type: 'caught_up', seq: this.lastSeq });
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
  }

  private hear(item: InboxItemJson): void {
    if (this.closed) return;
    if (this.catchingUp) {
      this.heard.push(item);
      return;
    }
    if (item.seq <= this.lastSeq) return;
    if (item.seq === this.lastSeq + 1) this.forward(item);
    else void this.catchUp();
  }

  private async catchUp(options: { failLoudly?: boolean } = {}): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    try {
      do {
        this.catchUpAgain = false;
        for (;;) {
          const items = await listInboxAfter(this.deps.sql, this.userId, this.lastSeq, CATCH_UP_PAGE);
          for (const item of items) this.forward(toInboxItemJson(item));
          if (items.length < CATCH_UP_PAGE || this.closed) break;
        }
      } while (this.catchUpAgain && !this.closed);
    } catch (err) {
      if (options.failLoudly) throw err;
      this.deps.logger.warn({ err, userId: this.userId }, 'inbox catch-up failed; closing the connection so the client reconnects');
      this.sink.close('catch-up failed');
      this.close();
      return;
    } finally {
      this.catchingUp = false;
    }
    // Heard while reading: those the read already covered are dropped, the rest go out in order.
    for (const item of this.heard.splice(0).sort((a, b) => a.seq - b.seq)) this.hear(item);
  }

  private forward(item: InboxItemJson): void {
    if (this.closed || item.seq <= this.lastSeq) return;
    this.lastSeq = item.seq;
    this.emit({ type: 'notification', item });
  }

  private emit(event: InboxEvent): void {
    if (this.closed) return;
    if (this.sink.send(event)) return;
    // The client stopped reading: drop it rather than buffer without bound; it resumes from its last seq.
    this.deps.logger.info({ userId: this.userId }, 'inbox client too slow; closing its connection');
    this.sink.close('client too slow');
    this.close();
  }
}
