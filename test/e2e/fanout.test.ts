import { beforeAll, describe, expect, it } from 'vitest';
import type { FanoutJson as FanoutOnly, FanoutWithMembersJson } from '../../internal/domain/fanout.ts';
import type { Sql } from '../../internal/platform/database.ts';
import type { TestDatabase } from '../support/testEnvironment.ts';
import { isRunning, useTestScope, type RunningWorker } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';

const LIST_SIZE = 1000;
const TOPIC_SIZE = 20_000;
/** What one `PUT /topics/:key/subscribers` takes at most. */
const SUBSCRIBERS_PER_PUT = 1000;
/** Requests the test keeps in flight against the API at once while it sets up users. */
const SETUP_PARALLELISM = 8;

/** A fan-out as the API answers it; `notifications` only for a list of user_ids. */
type FanoutJson = FanoutOnly & Partial<Pick<FanoutWithMembersJson, 'notifications'>>;

async function request(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined, headers: res.headers };
}

/** `count` user ids under `prefix`, zero-padded so their order is their number's. */
function userIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
}

/** Runs `work` on every item, `parallelism` at a time. */
async function inParallel<T>(items: T[], parallelism: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Subscribes the users to the topic through the API, a request per 1,000. */
async function subscribeAll(apiUrl: string, topic: string, users: string[]): Promise<void> {
  const chunks: string[][] = [];
  for (let i = 0; i < users.length; i += SUBSCRIBERS_PER_PUT) chunks.push(users.slice(i, i + SUBSCRIBERS_PER_PUT));
  await inParallel(chunks, 4, async (chunk) => {
    const res = await request('PUT', `${apiUrl}/topics/${topic}/subscribers`, { user_ids: chunk });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  });
  const summary = await request('GET', `${apiUrl}/topics/${topic}`);
  expect(summary.json).toEqual({ topic, subscribers: users.length });
}

/** The fan-out as `GET /fanouts/:id` shows it once `done` accepts it; fails with the last view. */
async function fanoutReached(apiUrl: string, id: string, what: string, done: (f: FanoutJson) => boolean, timeoutMs: number): Promise<FanoutJson> {
  let last: FanoutJson | undefined;
  try {
    return await waitFor(
      `fan-out ${id}: ${what}`,
      async () => {
        last = (await request('GET', `${apiUrl}/fanouts/${id}`)).json as FanoutJson;
        return done(last) ? last : undefined;
      },
      timeoutMs,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(last)}`);
  }
}

function allSent(total: number): (f: FanoutJson) => boolean {
  return (f) => f.status === 'DONE' && f.counts.SENT === total;
}

interface FanoutTally {
  notifications: number;
  users: number;
  sent: number;
  /** SENT attempts recorded, and how many notifications they cover. */
  sentAttempts: number;
  notificationsWithSentAttempt: number;
}

async function tally(sql: Sql, fanoutId: string): Promise<FanoutTally> {
  const [row] = await sql<FanoutTally[]>`
    select
      (select count(*)::int from notifications where fanout_id = ${fanoutId}) as notifications,
      (select count(distinct user_id)::int from notifications where fanout_id = ${fanoutId}) as users,
      (select count(*)::int from notifications where fanout_id = ${fanoutId} and status = 'SENT') as sent,
      (select count(*)::int from notification_attempts a join notifications n on n.id = a.notification_id
        where n.fanout_id = ${fanoutId} and a.outcome = 'SENT') as "sentAttempts",
      (select count(distinct a.notification_id)::int from notification_attempts a join notifications n on n.id = a.notification_id
        where n.fanout_id = ${fanoutId} and a.outcome = 'SENT') as "notificationsWithSentAttempt"`;
  return row!;
}

/** Inbox items of the fan-out's notifications: how many, for how many users, and how many under another user's name. */
async function inboxTally(sql: Sql, fanoutId: string): Promise<{ items: number; users: number; misaddressed: number }> {
  const [row] = await sql<{ items: number; users: number; misaddressed: number }[]>`
    select count(*)::int as items, count(distinct i.user_id)::int as users,
           count(*) filter (where i.user_id <> n.user_id)::int as misaddressed
    from inbox_items i join notifications n on n.id = i.notification_id
    where n.fanout_id = ${fanoutId}`;
  return row!;
}

/** Workers that recorded a SENT attempt for the fan-out's notifications, with how many each. */
async function sentByWorker(sql: Sql, fanoutId: string): Promise<Map<string, number>> {
  const rows = await sql<{ worker_id: string; n: number }[]>`
    select a.worker_id, count(*)::int as n from notification_attempts a join notifications n on n.id = a.notification_id
    where n.fanout_id = ${fanoutId} and a.outcome = 'SENT' group by a.worker_id`;
  return new Map(rows.map((r) => [r.worker_id, r.n]));
}

/** Each of the fan-out's `size` notifications went to a user of its own, was SENT by exactly one attempt into that user's inbox. */
async function expectSentOncePerUser(sql: Sql, fanoutId: string, size: number): Promise<void> {
  expect(await tally(sql, fanoutId)).toEqual({ notifications: size, users: size, sent: size, sentAttempts: size, notificationsWithSentAttempt: size });
  expect(await inboxTally(sql, fanoutId)).toEqual({ items: size, users: size, misaddressed: 0 });
}

function expectBothWorkersSent(perWorker: Map<string, number>, workers: RunningWorker[]): void {
  expect(new Set(perWorker.keys())).toEqual(new Set(workers.map((w) => w.id)));
  for (const w of workers) expect(perWorker.get(w.id), `notifications sent by ${w.id}`).toBeGreaterThan(0);
}

describe('fan-out to many users with two worker processes', () => {
  const scope = useTestScope('file');
  let db: TestDatabase;
  let api: string;
  let workers: RunningWorker[];
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await scope.receiver();
    // A lease far above any stall of a loaded machine: every notification is attempted exactly once.
    const started = await scope.services({ env: { LEASE_MS: '30000', WORKER_CONCURRENCY: '20', LOG_LEVEL: 'info' }, workers: 2 });
    ({ db, workers } = started);
    api = started.api.url;
  });

  it('user_ids with 1,000 IN_APP users: 201 listing 1,000 notifications, each SENT once into its own user\'s inbox', async () => {
    const users = userIds('inapp', LIST_SIZE);
    const res = await request('POST', `${api}/notifications`, { user_ids: users, type: 'IN_APP', title: 'Hello', body: 'To everyone' });
    expect(res.status, JSON.stringify(res.json).slice(0, 500)).toBe(201);
    const created = res.json as FanoutJson;
    expect(created).toMatchObject({ topic: null, type: 'IN_APP', status: 'DONE', created_count: LIST_SIZE });
    expect(created.notifications).toHaveLength(LIST_SIZE);
    expect(new Set(created.notifications!.map((n) => n.id)).size).toBe(LIST_SIZE);
    expect([...created.notifications!.map((n) => n.user_id)].sort()).toEqual(users);

    const done = await fanoutReached(api, created.fanout_id, `all ${LIST_SIZE} SENT`, allSent(LIST_SIZE), 30_000);
    expect(done.counts).toEqual({ SENT: LIST_SIZE });
    await expectSentOncePerUser(db.sql, created.fanout_id, LIST_SIZE);
    expectBothWorkersSent(await sentByWorker(db.sql, created.fanout_id), workers);
  });

  it('user_ids with 1,000 WEBHOOK users reaches each profile\'s webhook_url exactly once; a repeat with the Idempotency-Key creates nothing', async () => {
    const users = userIds('hook', LIST_SIZE);
    await inParallel(users, SETUP_PARALLELISM, async (user) => {
      const res = await request('PUT', `${api}/users/${user}`, { webhook_url: `${receiver.url}?user=${user}` });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
    });

    const body = { user_ids: users, type: 'WEBHOOK', body: 'Your weekly digest', data: { week: 12 } };
    const key = { 'idempotency-key': 'digest-week-12' };
    const first = await request('POST', `${api}/notifications`, body, key);
    expect(first.status, JSON.stringify(first.json).slice(0, 500)).toBe(201);
    const created = first.json as FanoutJson;
    expect(created).toMatchObject({ type: 'WEBHOOK', status: 'DONE', created_count: LIST_SIZE });
    const userOf = new Map(created.notifications!.map((n) => [n.id, n.user_id]));
    expect(userOf.size).toBe(LIST_SIZE);
    expect([...userOf.values()].sort()).toEqual(users);

    // The client retries while the first request's notifications are being delivered.
    const repeat = await request('POST', `${api}/notifications`, body, key);
    expect(repeat.status).toBe(200);
    const repeated = repeat.json as FanoutJson;
    expect(repeated.fanout_id).toBe(created.fanout_id);
    expect(repeated.notifications!.map((n) => n.id).sort()).toEqual([...userOf.keys()].sort());

    await fanoutReached(api, created.fanout_id, `all ${LIST_SIZE} SENT`, allSent(LIST_SIZE), 30_000);
    const [stored] = await db.sql<{ fanouts: number; notifications: number }[]>`
      select (select count(*)::int from fanouts where type = 'WEBHOOK') as fanouts,
             (select count(*)::int from notifications where type = 'WEBHOOK') as notifications`;
    expect(stored).toEqual({ fanouts: 1, notifications: LIST_SIZE });

    const deliveries = new Map<string, number>();
    for (const hit of receiver.received) {
      const id = String(hit.headers['webhook-id']);
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      expect(hit.json, `webhook ${id}`).toMatchObject({ id, user_id: userOf.get(id), body: 'Your weekly digest', data: { week: 12 } });
    }
    expect(receiver.received).toHaveLength(LIST_SIZE);
    expect(new Set(deliveries.keys())).toEqual(new Set(userOf.keys()));
    expect([...deliveries.values()].filter((n) => n !== 1)).toEqual([]);
    expect(await tally(db.sql, created.fanout_id)).toMatchObject({ sent: LIST_SIZE, sentAttempts: LIST_SIZE, notificationsWithSentAttempt: LIST_SIZE });
    expectBothWorkersSent(await sentByWorker(db.sql, created.fanout_id), workers);
  });

  it('a topic of 20,000 subscribers: 202, the fan-out reaches DONE with 20,000 created, and each subscriber gets exactly one notification, SENT once', async () => {
    const topic = 'release-notes';
    const users = userIds('sub', TOPIC_SIZE);
    await subscribeAll(api, topic, users);

    const res = await request('POST', `${api}/notifications`, { topic, type: 'IN_APP', title: 'v2', body: 'What is new' });
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    const accepted = res.json as FanoutJson;
    expect(accepted).toMatchObject({ topic, type: 'IN_APP', status: 'RUNNING' });
    expect(res.headers.get('location')).toBe(`/fanouts/${accepted.fanout_id}`);

    const created = await fanoutReached(api, accepted.fanout_id, 'DONE', (f) => f.status === 'DONE', 60_000);
    expect(created.created_count).toBe(TOPIC_SIZE);
    const done = await fanoutReached(api, accepted.fanout_id, `all ${TOPIC_SIZE} SENT`, allSent(TOPIC_SIZE), 60_000);
    expect(done.counts).toEqual({ SENT: TOPIC_SIZE });

    await expectSentOncePerUser(db.sql, accepted.fanout_id, TOPIC_SIZE);
    expectBothWorkersSent(await sentByWorker(db.sql, accepted.fanout_id), workers);
    const [strangers] = await db.sql<{ outsiders: number }[]>`
      select count(*)::int as outsiders from notifications n
      where n.fanout_id = ${accepted.fanout_id}
        and not exists (select 1 from topic_subscriptions s where s.topic = ${topic} and s.user_id = n.user_id)`;
    expect(strangers).toEqual({ outsiders: 0 });
  });
});

describe('a topic fan-out whose worker is SIGKILLed mid-way', () => {
  const scope = useTestScope();

  it('is finished by the other worker once the dead one\'s lease runs out: still exactly one notification per subscriber, all SENT', async () => {
    // A short lease, so the survivor takes over within the test's patience (no provider is
    // configured, so only WEBHOOK_TIMEOUT_MS, 1000, bounds it from below).
    const started = await scope.services({ env: { LEASE_MS: '5000', WORKER_CONCURRENCY: '20', LOG_LEVEL: 'info' }, workers: 2 });
    const { db, workers } = started;
    const api = started.api.url;
    const topic = 'outage-updates';
    await subscribeAll(api, topic, userIds('crash', TOPIC_SIZE));

    const res = await request('POST', `${api}/notifications`, { topic, type: 'IN_APP', body: 'We are on it' });
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    const fanoutId = (res.json as FanoutJson).fanout_id;

    const holding = await waitFor(
      `fan-out ${fanoutId} to have created its first batch`,
      async () => {
        const [row] = await db.sql<{ status: string; created_count: number; locked_by: string | null }[]>`
          select status, created_count, locked_by from fanouts where id = ${fanoutId}`;
        return row && row.status === 'RUNNING' && row.created_count > 0 && row.locked_by ? row.locked_by : undefined;
      },
      30_000,
      5,
    );
    const victim = workers.find((w) => w.id === holding);
    const survivor = workers.find((w) => w.id !== holding);
    expect(victim, `the fan-out's holder ${holding} is one of the two workers`).toBeDefined();
    await victim!.process.kill();
    // A batch statement PostgreSQL had already received still commits after the kill: read the row
    // once no batch statement is under way (only the dead holder could be running one now).
    await waitFor(
      `the killed worker's last fan-out statement to end in PostgreSQL`,
      async () => {
        const [busy] = await db.sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where datname = ${db.name} and pid <> pg_backend_pid() and state <> 'idle' and query like '%set cursor%'`;
        return busy!.n === 0;
      },
      5_000,
      10,
    );

    const [orphaned] = await db.sql<{ status: string; created_count: number; locked_by: string; attempt: number }[]>`
      select status, created_count, locked_by, attempt from fanouts where id = ${fanoutId}`;
    expect(orphaned!.status, 'the fan-out finished before the kill; nothing was left to take over').toBe('RUNNING');
    expect(orphaned!.created_count).toBeLessThan(TOPIC_SIZE);
    expect(orphaned!.locked_by).toBe(victim!.id);

    const created = await fanoutReached(api, fanoutId, 'DONE after the takeover', (f) => f.status === 'DONE', 40_000);
    expect(created.created_count).toBe(TOPIC_SIZE);
    const finished = await survivor!.process.waitForLog((l) => l.fanoutId === fanoutId && l.msg === 'fan-out done', 5_000);
    expect(finished.created).toBe(TOPIC_SIZE - orphaned!.created_count);
    const [after] = await db.sql<{ attempt: number }[]>`select attempt from fanouts where id = ${fanoutId}`;
    expect(after!.attempt).toBeGreaterThan(orphaned!.attempt);

    await fanoutReached(api, fanoutId, `all ${TOPIC_SIZE} SENT`, allSent(TOPIC_SIZE), 60_000);
    await expectSentOncePerUser(db.sql, fanoutId, TOPIC_SIZE);
    expect(isRunning(survivor!.process)).toBe(true);
  });
});
