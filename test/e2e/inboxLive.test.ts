import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { sign } from 'hono/jwt';
import { decodeJwt } from 'jose';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { issueToken } from '../../internal/service/endUserToken.ts';
import type { InboxItemJson } from '../../internal/domain/inboxItem.ts';
import { MAX_CLIENT_MESSAGE_BYTES, TOKEN_EXPIRED_CLOSE_CODE } from '../../internal/http/routes/liveInbox.ts';
import type { InboxEvent } from '../../internal/service/inboxSession.ts';
import { insertNotification } from '../../internal/repository/notifications.ts';
import { deliverToInboxes } from '../support/claims.ts';
import { postNotification } from '../support/notifications.ts';
import type { ServiceProcess } from '../support/serviceProcess.ts';
import type { TcpProxy } from '../support/tcpProxy.ts';
import { serviceEnv, testQueueKeys, testRedisUrl, type TestDatabase } from '../support/testEnvironment.ts';
import { useTestScope, type TestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

const SECRET = 'live-inbox-test-secret-0123456789abcdef';
/** Heartbeat of the instance that tests heartbeats; the others' is long enough never to fire. */
const HEARTBEAT_MS = 300;
const QUIET_HEARTBEAT = { INBOX_HEARTBEAT_MS: '60000' };
/** How long a live event may take to cross Redis, the API and the client on a busy machine. */
const EVENT_WAIT_MS = 10_000;

type Api = { process: ServiceProcess; url: string };

/** What every live client records, whatever its transport. */
abstract class LiveClient {
  readonly events: InboxEvent[] = [];
  /** What the client received that the protocol does not allow. */
  readonly problems: string[] = [];
  /** Settles when the connection is over, with the WebSocket close code (0 for an event stream). */
  abstract readonly closed: Promise<{ code: number; reason: string; at: number }>;

  constructor(readonly name: string) {}

  /** Seqs of the notifications received, in arrival order. */
  seqs(): number[] {
    return this.events.flatMap((e) => (e.type === 'notification' ? [e.item.seq] : []));
  }

  items(): InboxItemJson[] {
    return this.events.flatMap((e) => (e.type === 'notification' ? [e.item] : []));
  }

  caughtUp(): number[] {
    return this.events.flatMap((e) => (e.type === 'caught_up' ? [e.seq] : []));
  }

  /** The events as short strings (`n3`, `caught_up 5`), to compare whole sequences. */
  trace(): string[] {
    return this.events.map((e) => (e.type === 'notification' ? `n${e.item.seq}` : `caught_up ${e.seq}`));
  }

  async until(what: string, check: () => boolean, timeoutMs = EVENT_WAIT_MS): Promise<void> {
    try {
      await waitFor(`${this.name}: ${what}`, check, timeoutMs, 20);
    } catch (err) {
      throw new Error(`${(err as Error).message}; it has ${JSON.stringify(this.trace())}`);
    }
  }

  untilCaughtUp(): Promise<void> {
    return this.until('caught_up', () => this.caughtUp().length > 0);
  }

  untilSeq(seq: number, timeoutMs?: number): Promise<void> {
    return this.until(`seq ${seq}`, () => this.seqs().includes(seq), timeoutMs);
  }

  async closedWithin(timeoutMs: number): Promise<{ code: number; reason: string; at: number }> {
    return within(this.closed, timeoutMs, `${this.name} to be closed`);
  }

  abstract close(): void;
}

class WsClient extends LiveClient {
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  pings = 0;

  constructor(
    name: string,
    readonly socket: WebSocket,
  ) {
    super(name);
    socket.on('message', (data) => {
      const event = JSON.parse(String(data)) as InboxEvent;
      if (event.type !== 'notification' && event.type !== 'caught_up') this.problems.push(`unexpected message ${String(data)}`);
      this.events.push(event);
    });
    socket.on('ping', () => this.pings++);
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })));
  }

  close(): void {
    this.socket.terminate();
  }
}

class SseClient extends LiveClient {
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  /** The data of each `event: error`. */
  readonly errors: unknown[] = [];
  comments = 0;
  lastEventId: string | undefined;
  private buffered = '';

  constructor(
    name: string,
    private readonly request: http.ClientRequest,
    response: http.IncomingMessage,
  ) {
    super(name);
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.receive(chunk));
    response.on('error', () => {});
    this.closed = new Promise((resolve) => response.on('close', () => resolve({ code: 0, reason: '', at: Date.now() })));
  }

  close(): void {
    this.request.destroy();
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n\n')) >= 0) {
      const block = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments++;
        else {
          const colon = line.indexOf(':');
          fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
        }
      }
      if (fields.event === 'notification') {
        const item = JSON.parse(fields.data!) as InboxItemJson;
        if (fields.id !== String(item.seq)) this.problems.push(`event id ${fields.id} on seq ${item.seq}`);
        this.lastEventId = fields.id;
        this.events.push({ type: 'notification', item });
      } else if (fields.event === 'caught_up') {
        this.events.push({ type: 'caught_up', seq: (JSON.parse(fields.data!) as { seq: number }).seq });
      } else if (fields.event === 'error') {
        this.errors.push(JSON.parse(fields.data!));
      } else if (fields.event !== undefined) {
        this.problems.push(`unexpected event ${block}`);
      }
    }
  }
}

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function liveUrl(api: Api, path: 'ws' | 'stream', token: string | undefined, query: Record<string, string | number> = {}): string {
  const url = new URL(`${api.url}/inbox/${path}`);
  if (path === 'ws') url.protocol = 'ws:';
  if (token !== undefined) url.searchParams.set('access_token', token);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  return url.toString();
}

/** The status a refused WebSocket upgrade is answered with. */
async function refusedUpgrade(url: string): Promise<number> {
  const socket = new WebSocket(url);
  return within(
    new Promise<number>((resolve, reject) => {
      socket.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.on('open', () => {
        socket.terminate();
        reject(new Error(`${url} was upgraded`));
      });
      socket.on('error', () => {});
    }),
    EVENT_WAIT_MS,
    `the upgrade at ${url} to be answered`,
  );
}

/** A WebSocket client on a bare TCP connection, to send what a client library would not. */
class RawWebSocket {
  /** Settles with the time the server closed the TCP connection. */
  readonly closedAt: Promise<number>;
  private received = Buffer.alloc(0);

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on('error', () => {});
    this.closedAt = new Promise((resolve) => socket.on('close', () => resolve(Date.now())));
  }

  /** Connects and completes the upgrade (it answers pings only as the kernel does: never). */
  static async open(scope: TestScope, api: Api, token: string): Promise<RawWebSocket> {
    const raw = new RawWebSocket(net.connect(Number(new URL(api.url).port), '127.0.0.1'));
    scope.defer(() => raw.socket.destroy());
    raw.socket.write(
      `GET /inbox/ws?access_token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await waitFor('the raw client to be upgraded', () => raw.received.toString('latin1').startsWith('HTTP/1.1 101'), EVENT_WAIT_MS, 10);
    return raw;
  }

  /** Sends the header of a binary message of `length` bytes (masked, as a client's must be), and no payload. */
  announce(length: number): void {
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
    randomBytes(4).copy(header, 10);
    this.socket.write(header);
  }

  /** The status code of the server's close frame, once one has arrived. */
  closeCode(): number | undefined {
    const text = this.received.toString('latin1');
    let at = text.indexOf('\r\n\r\n') + 4;
    // Server frames are unmasked: opcode, then a 7-bit length or a 16- or 64-bit one after it.
    while (at > 3 && at + 2 <= this.received.length) {
      const opcode = this.received[at]! & 0x0f;
      const short = this.received[at + 1]! & 0x7f;
      const lengthBytes = short === 126 ? 2 : short === 127 ? 8 : 0;
      const length = lengthBytes === 2 ? this.received.readUInt16BE(at + 2) : lengthBytes === 8 ? Number(this.received.readBigUInt64BE(at + 2)) : short;
      const payload = at + 2 + lengthBytes;
      if (payload + length > this.received.length) return undefined;
      if (opcode === 0x8) return this.received.readUInt16BE(payload);
      at = payload + length;
    }
    return undefined;
  }
}

/** Runs `count` tasks, at most `parallel` at a time; the results in task order. */
async function inParallel<T>(count: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/**
 * Starts `cmd/api.ts` and waits until it answers /readyz, so that its Pub/Sub connection is past
 * its handshake before a client subscribes (a subscription made during the handshake is lost: see
 * the last test of this file).
 */
async function startApi(scope: TestScope, env: Record<string, string>): Promise<Api> {
  const api = await scope.api(env);
  await waitFor(`the API at ${api.url} to be ready`, async () => (await fetch(`${api.url}/readyz`)).status === 200, EVENT_WAIT_MS);
  // /readyz asks the other Redis connection; the Pub/Sub one connects alongside, give it a moment.
  await sleep(100);
  return api;
}

describe('the live inbox over WebSocket and Server-Sent Events, across API instances', () => {
  const shared = useTestScope('file');
  let db: TestDatabase;
  let env: Record<string, string>;
  /** Two APIs on one database and one INBOX_CHANNEL prefix; B reaches Redis through `redisProxy`. */
  let apiA: Api;
  let apiB: Api;
  let redisProxy: TcpProxy;
  /** Per test: processes it starts and clients it opens, ended after it (after the clients close). */
  const scope = useTestScope();
  const clients: LiveClient[] = [];

  beforeAll(async () => {
    db = await shared.database();
    redisProxy = await shared.proxy(testRedisUrl());
    env = serviceEnv(db, testQueueKeys(), {
      LEASE_MS: '30000',
      INBOX_CHANNEL: `${inject('runId')}:inbox:${randomBytes(4).toString('hex')}`,
      INBOX_JWT_SECRET: SECRET,
      LOG_LEVEL: 'info',
    });
    [apiA, apiB] = await Promise.all([
      startApi(shared, { ...env, ...QUIET_HEARTBEAT }),
      startApi(shared, { ...env, ...QUIET_HEARTBEAT, REDIS_URL: redisProxy.urlFor(testRedisUrl()) }),
      shared.worker(env),
    ]);
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    redisProxy.restore();
  });

  /** A user of this test alone. */
  function newUser(name: string): string {
    return `${name}-${randomUUID().slice(0, 8)}`;
  }

  const token = (userId: string) => issueToken(userId, SECRET, 3600);

  async function openWs(api: Api, userId: string, query: Record<string, string | number> = {}, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
    const socket = new WebSocket(liveUrl(api, 'ws', await token(userId), query), options);
    const client = new WsClient(`WebSocket of ${userId}`, socket);
    clients.push(client);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
        socket.once('error', reject);
      }),
      EVENT_WAIT_MS,
      `the WebSocket of ${userId} to open`,
    );
    return client;
  }

  /** An event stream; `agent: false` asks for a connection that is not kept alive after it. */
  async function openSse(
    api: Api,
    userId: string,
    query: Record<string, string | number> = {},
    headers: Record<string, string> = {},
    agent?: false,
  ): Promise<SseClient> {
    const request = http.get(liveUrl(api, 'stream', await token(userId), query), { agent, headers: { accept: 'text/event-stream', ...headers } });
    const response = await within(
      new Promise<http.IncomingMessage>((resolve, reject) => {
        request.once('response', resolve);
        request.once('error', reject);
      }),
      EVENT_WAIT_MS,
      `the event stream of ${userId} to answer`,
    );
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/event-stream');
    const client = new SseClient(`event stream of ${userId}`, request, response);
    clients.push(client);
    return client;
  }

  async function post(api: Api, userId: string, count: number, extra: Record<string, unknown> = {}, parallel = 8): Promise<string[]> {
    return inParallel(count, parallel, async (i) => {
      const created = await postNotification(api.url, { user_id: userId, type: 'IN_APP', title: `for ${userId}`, body: `item ${i}`, ...extra });
      return created.id;
    });
  }

  /** The user's inbox as PostgreSQL holds it, in seq order. */
  async function stored(userId: string): Promise<{ seq: number; notification_id: string }[]> {
    return db.sql<{ seq: number; notification_id: string }[]>`
      select seq, notification_id from inbox_items where user_id = ${userId} order by seq`;
  }

  async function untilStored(userId: string, count: number, timeoutMs = 30_000): Promise<{ seq: number; notification_id: string }[]> {
    return waitFor(`${count} inbox items of ${userId} in PostgreSQL`, async () => {
      const rows = await stored(userId);
      return rows.length >= count ? rows : undefined;
    }, timeoutMs, 50);
  }

  /** Every stored item after `since`, in seq order: what a client that has `since` must receive. */
  async function expectEverythingAfter(client: LiveClient, userId: string, since: number): Promise<void> {
    const expected = (await stored(userId)).filter((r) => r.seq > since);
    expect(client.seqs(), `${client.name} from ${since}`).toEqual(expected.map((r) => r.seq));
    expect(client.items().map((i) => i.notification_id)).toEqual(expected.map((r) => r.notification_id));
    expect(client.problems, client.name).toEqual([]);
  }

  it('delivers a notification POSTed to instance A to a WebSocket on instance B, an event stream on A and every tab of the user', async () => {
    const user = newUser('cross');
    const [tab1, tab2, stream] = await Promise.all([openWs(apiB, user), openWs(apiB, user), openSse(apiA, user)]);
    for (const c of [tab1, tab2, stream]) await c.untilCaughtUp();
    for (const c of [tab1, tab2, stream]) expect(c.trace()).toEqual(['caught_up 0']);

    const [id] = await post(apiA, user, 1, { title: 'Hello', data: { k: 1 } });
    for (const c of [tab1, tab2, stream]) await c.untilSeq(1);
    for (const c of [tab1, tab2, stream]) {
      expect(c.items()).toEqual([
        expect.objectContaining({ notification_id: id, seq: 1, title: 'Hello', body: 'item 0', data: { k: 1 }, read_at: null, archived_at: null }),
      ]);
    }

    // One tab closes; the other keeps hearing the user's channel on that instance.
    tab1.close();
    await tab1.closedWithin(5000);
    await post(apiA, user, 1);
    await tab2.untilSeq(2);
    await stream.untilSeq(2);
    await sleep(200);
    expect(tab1.seqs()).toEqual([1]);
    for (const c of [tab2, stream]) await expectEverythingAfter(c, user, 0);
  });

  it("keeps users apart: a client hears only its own user's items, and a token opens only its own user's stream", async () => {
    const alice = newUser('alice');
    const bob = newUser('bob');
    // Asking for bob in the URL changes nothing: the stream is the token's user's.
    const aliceWs = await openWs(apiB, alice, { user_id: bob, sub: bob });
    const aliceSse = await openSse(apiA, alice);
    const bobWs = await openWs(apiB, bob);
    for (const c of [aliceWs, aliceSse, bobWs]) await c.untilCaughtUp();

    await Promise.all([post(apiA, alice, 3), post(apiB, bob, 4)]);
    const aliceIds = new Set((await untilStored(alice, 3)).map((r) => r.notification_id));
    const bobIds = new Set((await untilStored(bob, 4)).map((r) => r.notification_id));
    for (const c of [aliceWs, aliceSse]) await c.untilSeq(3);
    await bobWs.untilSeq(4);
    await sleep(300);
    for (const c of [aliceWs, aliceSse]) {
      expect(c.items().every((i) => aliceIds.has(i.notification_id)), c.name).toBe(true);
      await expectEverythingAfter(c, alice, 0);
    }
    expect(bobWs.items().every((i) => bobIds.has(i.notification_id))).toBe(true);
    await expectEverythingAfter(bobWs, bob, 0);

    const now = Math.floor(Date.now() / 1000);
    const forged = await sign({ sub: bob, exp: now + 3600 }, 'a-different-secret-of-enough-length-000000', 'HS256');
    const expired = await sign({ sub: bob, exp: now - 10 }, SECRET, 'HS256');
    for (const api of [apiA, apiB]) {
      expect(await refusedUpgrade(liveUrl(api, 'ws', undefined))).toBe(401);
      expect(await refusedUpgrade(liveUrl(api, 'ws', forged))).toBe(401);
      expect(await refusedUpgrade(liveUrl(api, 'ws', expired))).toBe(401);
      expect(await refusedUpgrade(liveUrl(api, 'ws', await token(bob), { since: 'x' }))).toBe(400);
      for (const t of [undefined, forged, expired]) {
        const res = await fetch(liveUrl(api, 'stream', t));
        expect(res.status).toBe(401);
        await res.body?.cancel();
      }
    }
  });

  it('catches up from `since`: everything after it in seq order, then caught_up, then live items', async () => {
    const user = newUser('catch-up');
    await post(apiA, user, 5, {}, 1);
    await untilStored(user, 5);

    const fromTwo = await openWs(apiB, user, { since: 2 });
    const fromZero = await openSse(apiA, user);
    const fromFive = await openWs(apiA, user, { since: 5 });
    const withLastEventId = await openSse(apiB, user, { since: 0 }, { 'last-event-id': '4' });
    for (const c of [fromTwo, fromZero, fromFive, withLastEventId]) await c.untilCaughtUp();
    expect(fromTwo.trace()).toEqual(['n3', 'n4', 'n5', 'caught_up 5']);
    expect(fromZero.trace()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'caught_up 5']);
    expect(fromFive.trace()).toEqual(['caught_up 5']);
    // An EventSource reconnects to its first URL and adds Last-Event-ID, which wins.
    expect(withLastEventId.trace()).toEqual(['n5', 'caught_up 5']);

    await post(apiB, user, 1);
    for (const c of [fromTwo, fromZero, fromFive, withLastEventId]) await c.untilSeq(6);
    expect(fromTwo.trace()).toEqual(['n3', 'n4', 'n5', 'caught_up 5', 'n6']);
    expect(fromZero.trace()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'caught_up 5', 'n6']);
    expect(fromFive.trace()).toEqual(['caught_up 5', 'n6']);
    expect(withLastEventId.trace()).toEqual(['n5', 'caught_up 5', 'n6']);
  });

  it('gives each of 10 clients connecting during 300 concurrent deliveries every seq after its `since`, once and in order', async () => {
    const user = newUser('burst');
    const BEFORE = 20;
    const DURING = 300;
    await post(apiA, user, BEFORE);
    await untilStored(user, BEFORE);

    const sinces = [0, 20, 3, 17, 9, 12, 20, 1, 15, 6];
    const opening: Promise<LiveClient>[] = [];
    const posting = Promise.all([post(apiA, user, DURING / 2, {}, 6), post(apiB, user, DURING / 2, {}, 6)]);
    for (const [i, since] of sinces.entries()) {
      await sleep(80);
      const api = i % 2 === 0 ? apiA : apiB;
      opening.push(i % 3 === 2 ? openSse(api, user, { since }) : openWs(api, user, { since }));
    }
    const burst = await Promise.all(opening);
    await posting;
    const rows = await untilStored(user, BEFORE + DURING);
    // Seqs number the user's items without a hole.
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: BEFORE + DURING }, (_, i) => i + 1));

    for (const c of burst) await c.untilSeq(BEFORE + DURING, 20_000);
    await sleep(300);
    for (const [i, c] of burst.entries()) {
      await expectEverythingAfter(c, user, sinces[i]!);
      expect(c.caughtUp(), c.name).toHaveLength(1);
      // caught_up comes after the catch-up's items and before any item past it.
      const at = c.events.findIndex((e) => e.type === 'caught_up');
      const upTo = c.caughtUp()[0]!;
      expect(c.seqs().slice(0, at)).toEqual(c.seqs().filter((s) => s <= upTo));
    }
  });

  it('fills a gap left by a lost announcement from PostgreSQL when the next item shows it', async () => {
    const user = newUser('gap');
    const onA = await openWs(apiA, user);
    const onB = await openSse(apiB, user);
    for (const c of [onA, onB]) await c.untilCaughtUp();
    await post(apiA, user, 1);
    for (const c of [onA, onB]) await c.untilSeq(1);

    // What a worker commits, whose PUBLISH is then lost: an item nobody announces.
    const { row } = await insertNotification(
      db.sql,
      { id: randomUUID(), user_id: user, type: 'IN_APP', title: 'unannounced', body: 'b', recipient: null, html: null, data: null, critical: false },
      undefined,
      () => {},
    );
    const [delivered] = await deliverToInboxes(db.sql, [row.id]);
    expect(delivered?.item?.seq).toBe(2);

    await post(apiA, user, 1);
    for (const c of [onA, onB]) await c.untilSeq(3);
    for (const c of [onA, onB]) {
      expect(c.trace()).toEqual(['caught_up 0', 'n1', 'n2', 'n3']);
      await expectEverythingAfter(c, user, 0);
    }
  });

  it('resumes a reconnecting client from its last seq, over WebSocket with since and over SSE with Last-Event-ID', async () => {
    const user = newUser('resume');
    const ws1 = await openWs(apiB, user);
    const sse1 = await openSse(apiA, user);
    await post(apiA, user, 3, {}, 1);
    for (const c of [ws1, sse1]) await c.untilSeq(3);
    ws1.close();
    sse1.close();
    await Promise.all([ws1.closedWithin(5000), sse1.closedWithin(5000)]);

    await post(apiB, user, 4);
    await untilStored(user, 7);
    const last = ws1.seqs().at(-1)!;
    const ws2 = await openWs(apiA, user, { since: last });
    const sse2 = await openSse(apiB, user, {}, { 'last-event-id': sse1.lastEventId! });
    for (const c of [ws2, sse2]) await c.untilCaughtUp();
    await post(apiA, user, 1);
    for (const c of [ws2, sse2]) await c.untilSeq(8);
    expect(ws2.trace()).toEqual(['n4', 'n5', 'n6', 'n7', 'caught_up 7', 'n8']);
    expect(sse2.trace()).toEqual(['n4', 'n5', 'n6', 'n7', 'caught_up 7', 'n8']);
    expect([...ws1.seqs(), ...ws2.seqs()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('closes a WebSocket client that stopped reading, without holding back another client of the same user', async () => {
    const user = newUser('slow');
    const fast = await openWs(apiA, user);
    const slow = await openWs(apiA, user);
    for (const c of [fast, slow]) await c.untilCaughtUp();
    slow.socket.pause();

    // Far more than the socket buffers hold, so the server's unsent data for `slow` piles up.
    const COUNT = 120;
    const body = randomBytes(72_000).toString('base64');
    await post(apiA, user, COUNT, { body }, 4);
    await fast.untilSeq(COUNT, 30_000);
    await apiA.process.waitForLog((l) => l.userId === user && l.msg === 'inbox client too slow; closing its connection', EVENT_WAIT_MS);
    await post(apiA, user, 1);
    await fast.untilSeq(COUNT + 1);
    await expectEverythingAfter(fast, user, 0);

    // Once it reads again it finds what was sent before the server gave up on it, then the close.
    slow.socket.resume();
    const closed = await slow.closedWithin(EVENT_WAIT_MS);
    expect(closed).toMatchObject({ code: 1013, reason: 'client too slow' });
    const got = slow.seqs();
    expect(got.length).toBeLessThan(COUNT);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));
  });

  it(`closes a WebSocket whose client sends a message over ${MAX_CLIENT_MESSAGE_BYTES} bytes with 1009, on its header alone`, async () => {
    const user = newUser('big-message');
    const client = await openWs(apiA, user);
    await client.untilCaughtUp();
    // Messages within the bound are taken (and ignored): the connection carries on.
    client.socket.send(Buffer.alloc(MAX_CLIENT_MESSAGE_BYTES, 1));
    await post(apiA, user, 1);
    await client.untilSeq(1);
    client.socket.send(Buffer.alloc(MAX_CLIENT_MESSAGE_BYTES + 1, 1));
    expect(await client.closedWithin(EVENT_WAIT_MS)).toMatchObject({ code: 1009 });

    // A client that announces 100 MiB is refused before it sends any of it: nothing is buffered.
    const raw = await RawWebSocket.open(scope, apiA, await token(user));
    raw.announce(100 * 1024 * 1024);
    expect(await waitFor('the server to close the raw connection', () => raw.closeCode(), EVENT_WAIT_MS, 10)).toBe(1009);
  });

  it('closes live connections when their token expires: a WebSocket with 4401, an event stream after a token_expired error', async () => {
    const user = newUser('expiring');
    // `exp` is in whole seconds: this token ends 1 to 2 s from now.
    const expiring = await issueToken(user, SECRET, 2);
    const expiresAt = decodeJwt(expiring).exp! * 1000;
    // Further ahead than one setTimeout can wait (24.8 days), which must not read as "now".
    const lasting = await issueToken(user, SECRET, 30 * 24 * 3600);
    // `access_token` in the query stands in for the hour-long token the clients get otherwise.
    const ws = await openWs(apiA, user, { access_token: expiring });
    const sse = await openSse(apiB, user, { access_token: expiring });
    const long = await openWs(apiA, user, { access_token: lasting });
    for (const c of [ws, sse, long]) await c.untilCaughtUp();

    const [wsClosed, sseClosed] = await Promise.all([ws.closedWithin(EVENT_WAIT_MS), sse.closedWithin(EVENT_WAIT_MS)]);
    expect(wsClosed).toMatchObject({ code: TOKEN_EXPIRED_CLOSE_CODE, reason: 'token expired' });
    expect(wsClosed.at).toBeGreaterThanOrEqual(expiresAt);
    expect(sseClosed.at).toBeGreaterThanOrEqual(expiresAt);
    expect(sse.errors).toEqual([{ code: 'token_expired', message: 'the inbox token expired; reconnect with a new one' }]);
    expect(sse.problems).toEqual([]);

    await post(apiA, user, 1);
    await long.untilSeq(1);
    expect(long.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('pings live connections every INBOX_HEARTBEAT_MS and cuts off a WebSocket client that does not answer within ~3 heartbeats', async () => {
    const api = await startApi(scope, { ...env, INBOX_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    const user = newUser('heartbeat');
    const answering = await openWs(api, user);
    const stream = await openSse(api, user);
    const mute = await openWs(api, user, {}, { autoPong: false });
    const mutedAt = Date.now();

    // A raw TCP client that completes the upgrade, then says nothing (it still reads).
    const raw = await RawWebSocket.open(scope, api, await token(user));
    const rawAt = Date.now();

    const muteClosed = await mute.closedWithin(3 * HEARTBEAT_MS + 2000);
    expect(muteClosed.code).toBe(1006);
    expect(muteClosed.at - mutedAt).toBeGreaterThanOrEqual(HEARTBEAT_MS);
    expect(muteClosed.at - mutedAt).toBeLessThanOrEqual(3 * HEARTBEAT_MS + 500);
    const rawClosedAt = await within(raw.closedAt, 3 * HEARTBEAT_MS + 2000, 'the silent raw client to be cut off');
    expect(rawClosedAt - rawAt).toBeLessThanOrEqual(3 * HEARTBEAT_MS + 500);

    // The clients that answer stay, and hear a ping (or an SSE comment) every heartbeat.
    await sleep(6 * HEARTBEAT_MS);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    expect(answering.pings).toBeGreaterThanOrEqual(5);
    expect(stream.comments).toBeGreaterThanOrEqual(5);
    await post(apiA, user, 1);
    for (const c of [answering, stream]) await c.untilSeq(1);
    expect(mute.seqs()).toEqual([]);
  });

  it('makes a client that connects while Pub/Sub is stalled wait for its subscription, so nothing committed meanwhile is missed', async () => {
    const user = newUser('stalled');
    await post(apiA, user, 2, {}, 1);
    await untilStored(user, 2);

    redisProxy.freeze();
    const client = await openWs(apiB, user, { since: 1 });
    await post(apiA, user, 3);
    await untilStored(user, 5);
    await sleep(300);
    // Its subscription is not confirmed yet, so it has read nothing yet either.
    expect(client.trace()).toEqual([]);

    redisProxy.restore();
    await client.untilCaughtUp();
    expect(client.trace()).toEqual(['n2', 'n3', 'n4', 'n5', 'caught_up 5']);
    await post(apiA, user, 1);
    await client.untilSeq(6);
    await expectEverythingAfter(client, user, 1);
  });

  it("resyncs instance B's clients from PostgreSQL when its Redis connection comes back, without duplicates", async () => {
    const user = newUser('resync');
    const onB = [await openWs(apiB, user), await openSse(apiB, user)];
    const onA = await openWs(apiA, user);
    for (const c of [...onB, onA]) await c.untilCaughtUp();
    await post(apiA, user, 2, {}, 1);
    for (const c of [...onB, onA]) await c.untilSeq(2);

    const reconnectsBefore = apiB.process.logs.filter((l) => l.msg === 'inbox subscriptions back; live connections catch up').length;
    redisProxy.cut();
    await post(apiA, user, 4);
    await untilStored(user, 6);
    await onA.untilSeq(6);
    await sleep(500);
    for (const c of onB) expect(c.seqs(), `${c.name} while B has no Redis`).toEqual([1, 2]);

    redisProxy.restore();
    await apiB.process.waitForLog(
      () => apiB.process.logs.filter((l) => l.msg === 'inbox subscriptions back; live connections catch up').length > reconnectsBefore,
      EVENT_WAIT_MS,
    );
    for (const c of onB) await c.untilSeq(6);
    await post(apiA, user, 1);
    for (const c of [...onB, onA]) await c.untilSeq(7);
    await sleep(300);
    for (const c of [...onB, onA]) {
      expect(c.trace(), c.name).toEqual(['caught_up 0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']);
      await expectEverythingAfter(c, user, 0);
    }
  });

  async function stopWithLiveClients(sseAgent?: false): Promise<{ exit: Promise<unknown>; stoppedAt: number }> {
    const api = await startApi(scope, { ...env, ...QUIET_HEARTBEAT });
    const user = newUser('stopping');
    const ws = await openWs(api, user);
    const sse = await openSse(api, user, {}, {}, sseAgent);
    for (const c of [ws, sse]) await c.untilCaughtUp();

    const stoppedAt = Date.now();
    api.process.signal('SIGTERM');
    const [wsClosed, sseClosed] = await Promise.all([ws.closedWithin(3000), sse.closedWithin(3000)]);
    expect(wsClosed).toMatchObject({ code: 1001, reason: 'server stopping' });
    expect(sseClosed.at - stoppedAt).toBeLessThan(3000);
    return { exit: api.process.exited, stoppedAt };
  }

  it('on SIGTERM, closes the live connections of the stopping API at once and exits 0', async () => {
    const { exit, stoppedAt } = await stopWithLiveClients(false);
    // Well before the 10 s after which a stopping API cuts connections off.
    expect(await within(exit, 3000, 'the stopping API to exit')).toEqual({ code: 0, signal: null });
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
  });

  // A client that keeps connections alive (browsers, Node's default agent) must not hold the
  // stopping API for the server's keep-alive timeout once its stream was closed.
  it('on SIGTERM, exits at once also when an event-stream client keeps its connection alive', async () => {
    const { exit, stoppedAt } = await stopWithLiveClients();
    expect(await within(exit, 3000, 'the stopping API to exit')).toEqual({ code: 0, signal: null });
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
  });

  // While the API's Pub/Sub connection is not ready (starting, or Redis away) a client could hear
  // nothing live: it is refused (1013, try again) rather than left waiting, and once Redis answers
  // its reconnect is served live.
  it('refuses a live connection while its Pub/Sub connection is not ready, then serves the reconnect live', async () => {
    const proxy = await scope.proxy(testRedisUrl());
    proxy.freeze();
    const api = await scope.api({ ...env, ...QUIET_HEARTBEAT, REDIS_URL: proxy.urlFor(testRedisUrl()) });
    const user = newUser('handshake');
    const refused = await openWs(api, user);
    expect(await refused.closedWithin(EVENT_WAIT_MS)).toMatchObject({ code: 1013 });
    proxy.restore();
    const client = await waitFor('a live connection once Redis answers', async () => {
      const attempt = await openWs(api, user);
      const outcome = await Promise.race([attempt.untilCaughtUp().then(() => 'live' as const), attempt.closed.then(() => 'closed' as const)]);
      return outcome === 'live' ? attempt : undefined;
    }, 10_000);
    await post(apiA, user, 1);
    await untilStored(user, 1);
    await client.untilSeq(1, 3000);
  });
});
