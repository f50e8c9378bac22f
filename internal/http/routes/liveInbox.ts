import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { UpgradeWebSocket, WSContext } from 'hono/ws';
import type { WebSocket } from 'ws';
import { InboxSession, type InboxEvent, type InboxSessionDeps, type InboxSink } from '../../service/inboxSession.ts';

/** Bytes a WebSocket client may leave unread before it is dropped (it resumes from its last seq). */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** Server-Sent Events a client may leave unwritten before it is dropped. */
const MAX_UNWRITTEN_EVENTS = 1000;
/**
 * The largest message a WebSocket client may send. Clients have nothing to say (herald never reads
 * their messages), but `ws` buffers each one whole before handing it over, up to 100 MiB by
 * default: a few connections could hold gigabytes. A longer one is refused by its header alone,
 * closing the connection with 1009 (message too big).
 */
export const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/**
 * The close code of a WebSocket whose token expired: in the range left to applications, so a
 * client can tell "get a new token" from a drop it should simply reconnect after (401 as in HTTP,
 * as graphql-ws's 4401 does).
 */
export const TOKEN_EXPIRED_CLOSE_CODE = 4401;
/** The longest delay setTimeout takes; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LiveInboxDeps extends InboxSessionDeps {
  heartbeatMs: number;
}

/** Whose inbox a live connection follows, from where, and until when its token lets it. */
export interface LiveConnection {
  userId: string;
  since: number;
  expiresAt: Date;
}

/**
 * The open live connections of this process, so a stopping API can close them (clients reconnect
 * to another instance and resume) instead of waiting for them to end.
 */
export class LiveConnections {
  private readonly open = new Set<() => void>();

  add(close: () => void): () => void {
    this.open.add(close);
    return () => this.open.delete(close);
  }

  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}

/**
 * `GET /inbox/stream`: the inbox as Server-Sent Events. Each item is an `event: notification` whose
 * `id` is its seq, so a reconnecting EventSource resumes by itself (`Last-Event-ID`). A comment
 * line every heartbeat keeps proxies from closing an idle stream and finds dead clients. When the
 * token expires the stream ends with an `event: error` whose code is `token_expired`.
 */
export function serveInboxEvents(c: Context, deps: LiveInboxDeps, live: LiveConnections, { userId, since, expiresAt }: LiveConnection): Response {
  return streamSSE(c, async (stream) => {
    const ended = new Promise<void>((resolve) => stream.onAbort(resolve));
    const sink = sseSink(stream);
    const session = new InboxSession(deps, userId, since, sink);
    const forget = live.add(() => sink.close('server stopping'));
    const expiry = when(expiresAt, () => {
      const data = JSON.stringify({ code: 'token_expired', message: 'the inbox token expired; reconnect with a new one' });
      const close = () => sink.close('token expired');
      void stream.writeSSE({ event: 'error', data }).then(close, close);
    });
    const heartbeat = setInterval(() => {
      if (sink.stalled()) sink.close('client stopped reading');
      else void stream.write(': ping\n\n').catch(() => sink.close('write failed'));
    }, deps.heartbeatMs);
    try {
      await session.start();
      await ended;
    } catch (err) {
      deps.logger.warn({ err, userId }, 'inbox stream could not start');
      await stream.writeSSE({ event: 'error', data: JSON.stringify({ code: 'unavailable', message: 'live inbox unavailable; retry' }) }).catch(() => {});
    } finally {
      clearInterval(heartbeat);
      expiry.cancel();
      session.close();
      forget();
    }
  });
}

function sseSink(stream: SSEStreamingApi): InboxSink & { stalled(): boolean } {
  let unwritten = 0;
  let unwrittenAtLastBeat = 0;
  let writes = Promise.resolve();
  return {
    send(event: InboxEvent): boolean {
      if (unwritten >= MAX_UNWRITTEN_EVENTS) return false;
      unwritten++;
      const message =
        event.type === 'notification'
          ? { event: 'notification', id: String(event.item.seq), data: JSON.stringify(event.item) }
          : { event: 'caught_up', data: JSON.stringify({ seq: event.seq }) };
      writes = writes.then(() => stream.writeSSE(message)).then(() => void unwritten--, () => stream.abort());
      return true;
    },
    close(): void {
      stream.abort();
    },
    /** True when nothing written has drained since the last heartbeat. */
    stalled(): boolean {
      const stalled = unwritten > 0 && unwrittenAtLastBeat > 0;
      unwrittenAtLastBeat = unwritten;
      return stalled;
    },
  };
}

/**
 * `GET /inbox/ws`: the inbox over a WebSocket, one JSON message per event. Pings every heartbeat;
 * a client that has not answered the previous one is cut off. When the token expires the socket is
 * closed with TOKEN_EXPIRED_CLOSE_CODE.
 */
export function inboxWebSocket(
  upgradeWebSocket: UpgradeWebSocket<WebSocket>,
  deps: LiveInboxDeps,
  live: LiveConnections,
  connection: (c: Context) => LiveConnection,
) {
  return upgradeWebSocket((c) => {
    const { userId, since, expiresAt } = connection(c);
    let session: InboxSession | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    let forget = () => {};
    let expiry = { cancel: () => {} };
    return {
      onOpen(_event, ws) {
        const socket = ws.raw!;
        session = new InboxSession(deps, userId, since, webSocketSink(ws, socket));
        forget = live.add(() => ws.close(1001, 'server stopping'));
        expiry = when(expiresAt, () => ws.close(TOKEN_EXPIRED_CLOSE_CODE, 'token expired'));
        let alive = true;
        socket.on('pong', () => (alive = true));
        heartbeat = setInterval(() => {
          if (!alive) return socket.terminate();
          alive = false;
          socket.ping();
        }, deps.heartbeatMs);
        session.start().catch((err: unknown) => {
          deps.logger.warn({ err, userId }, 'inbox websocket could not start');
          ws.close(1013, 'live inbox unavailable; retry');
        });
      },
      onClose() {
        clearInterval(heartbeat);
        expiry.cancel();
        session?.close();
        forget();
      },
    };
  });
}

function webSocketSink(ws: WSContext<WebSocket>, socket: WebSocket): InboxSink {
  return {
    send(event: InboxEvent): boolean {
      if (socket.bufferedAmount > MAX_UNREAD_BYTES) return false;
      ws.send(JSON.stringify(event));
      return true;
    },
    close(reason: string): void {
      ws.close(1013, reason);
    },
  };
}

/**
 * Runs `act` once `at` has come (at once if it has), however far ahead: a delay past what
 * setTimeout takes is waited for in steps, since a token may be valid for months.
 */
function when(at: Date, act: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const wait = () => {
    const left = at.getTime() - Date.now();
    if (left <= 0) act();
    else timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS));
  };
  wait();
  return { cancel: () => clearTimeout(timer) };
}
