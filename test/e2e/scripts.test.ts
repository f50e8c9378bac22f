import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../internal/platform/migrations.ts';
import type { QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { connectDatabase } from '../../internal/platform/database.ts';
import { isProcessAlive, runScript, ServiceProcess } from '../support/serviceProcess.ts';
import {
  connectTestRedis,
  createTestDatabase,
  databaseExists,
  dropDatabase,
  freePort,
  serviceEnv,
  testQueueKeys,
  unusedDatabase,
  type TestDatabase,
} from '../support/testEnvironment.ts';
import { TestScope, type RunningWorker } from '../support/testScope.ts';
import { startScenarioReceiver, type ScenarioAnswer, type WebhookReceiver } from '../support/webhookReceiver.ts';
import { postNotification, statusReached, storedNotification } from '../support/notifications.ts';
import { waitFor } from '../support/waitFor.ts';

/** A one-shot process that fails its configuration must be gone well within this, even on a busy machine. */
const CONFIG_EXIT_TIMEOUT_MS = 20_000;

/** An API and a worker on a database and queue keys of their own, delivering to a scenario receiver. */
interface Stack {
  db: TestDatabase;
  keys: QueueKeys;
  env: Record<string, string>;
  api: { process: ServiceProcess; url: string };
  worker: RunningWorker;
  receiver: WebhookReceiver;
  scenarios: Map<string, ScenarioAnswer>;
}

async function startStack(scope: TestScope): Promise<Stack> {
  const db = await scope.database();
  const keys = testQueueKeys();
  // A lease far above any stall of a loaded machine: each notification is attempted only as the receiver's answers say.
  const env = serviceEnv(db, keys, { LEASE_MS: '30000' });
  const { receiver, scenarios } = await startScenarioReceiver();
  scope.defer(() => receiver.close());
  const [api, worker] = await Promise.all([scope.api(env), scope.worker(env)]);
  return { db, keys, env, api, worker, receiver, scenarios };
}

/** Posts `count` webhooks the receiver refuses with 400 and waits until each is FAILED and dead-lettered. */
async function deadLetters(stack: Stack, redis: Redis, scenario: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const created = await postNotification(stack.api.url, { user_id: `dlq-${i}`, type: 'WEBHOOK', body: `dead ${i}`, to: stack.receiver.url, data: { scenario } });
    ids.push(created.id);
  }
  for (const id of ids) await statusReached(stack.db.sql, id, 'FAILED');
  await waitFor('every failed notification on the dead-letter list', async () => {
    const listed = new Set(await redis.lrange(stack.keys.dlq, 0, -1));
    return ids.every((id) => listed.has(id));
  });
  return ids;
}

describe('the dlq script against the real processes', () => {
  let scope: TestScope;
  let redis: Redis;

  beforeEach(() => {
    scope = new TestScope();
    redis = scope.redis();
  });

  afterEach(async () => {
    await scope.close();
  });

  it('replay --all puts every dead letter back to PENDING and each is then delivered once more and leaves the list', async () => {
    const stack = await startStack(scope);
    let answer = 400;
    stack.scenarios.set('replay-all', () => answer);
    const ids = await deadLetters(stack, redis, 'replay-all', 3);
    expect(new Set(await redis.lrange(stack.keys.dlq, 0, -1))).toEqual(new Set(ids));

    answer = 200;
    const replay = await runScript('dlq', ['replay', '--all'], stack.env);
    expect(replay.code).toBe(0);
    for (const id of ids) expect(replay.stdout).toContain(`replayed ${id}`);
    expect(replay.stdout).toContain(`${ids.length} of ${ids.length} replayed`);

    for (const id of ids) {
      const sent = await statusReached(stack.db.sql, id, 'SENT');
      expect(sent.retry_count).toBe(0);
      expect(stack.receiver.forId(id)).toHaveLength(2);
    }
    expect(await redis.llen(stack.keys.dlq)).toBe(0);
    const listed = await runScript('dlq', ['list'], stack.env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`0 dead letter(s) in ${stack.keys.dlq}`);
  });

  it('purge --dry-run changes nothing; purge empties the list for good while the rows stay FAILED', async () => {
    const stack = await startStack(scope);
    stack.scenarios.set('purged', () => 400);
    const ids = await deadLetters(stack, redis, 'purged', 2);

    const dryRun = await runScript('dlq', ['purge', '--dry-run'], stack.env);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain(`[dry run] purged ${ids.length} dead letter(s) from ${stack.keys.dlq}`);
    expect(new Set(await redis.lrange(stack.keys.dlq, 0, -1))).toEqual(new Set(ids));

    const purge = await runScript('dlq', ['purge'], stack.env);
    expect(purge.code).toBe(0);
    expect(purge.stdout).toContain(`purged ${ids.length} dead letter(s) from ${stack.keys.dlq}`);
    expect(purge.stdout).not.toContain('[dry run]');
    expect(await redis.llen(stack.keys.dlq)).toBe(0);
    for (const id of ids) {
      const row = await storedNotification(stack.db.sql, id);
      expect(row.status).toBe('FAILED');
      expect(row.retry_count).toBe(1);
    }

    // A worker whose maintenance pushes a FAILED row it finds missing from the list once that row has
    // been so for its LEASE_MS; nothing is left to deliver, so its short lease cannot cost an attempt.
    const maintenanceLeaseMs = 2000;
    await scope.worker(serviceEnv(stack.db, stack.keys, { LEASE_MS: String(maintenanceLeaseMs), WEBHOOK_TIMEOUT_MS: '1000' }));
    await sleep(maintenanceLeaseMs + 1500);
    expect(await redis.llen(stack.keys.dlq)).toBe(0);
    const listed = await runScript('dlq', ['list'], stack.env);
    expect(listed.stdout).toContain(`0 dead letter(s) in ${stack.keys.dlq}`);
    for (const id of ids) expect(stack.receiver.forId(id)).toHaveLength(1);
  });
});

describe('dlq replay --all with more dead letters than one batch', () => {
  const scope = new TestScope();

  afterAll(async () => {
    await scope.close();
  });

  it('replays all 600 in batches of 500, printing progress: every row PENDING with retry_count 0 and queued, the list empty', async () => {
    const count = 600;
    const db = await scope.database();
    const keys = testQueueKeys();
    const redis = scope.redis();
    const rows = await db.sql<{ id: string }[]>`
      insert into notifications (id, user_id, type, body, recipient, status, retry_count, error_reason, dead_lettered_at)
      select gen_random_uuid(), 'bulk-' || n, 'WEBHOOK', 'b', 'http://127.0.0.1:9/hook', 'FAILED', 3, 'webhook answered 500', now()
      from generate_series(1, ${count}) as n
      returning id`;
    const ids = rows.map((r) => r.id);
    await redis.lpush(keys.dlq, ...ids);

    const replay = await runScript('dlq', ['replay', '--all'], serviceEnv(db, keys));
    expect(replay.code, replay.stdout).toBe(0);
    expect(replay.stdout).toContain(`500/${count} processed`);
    expect(replay.stdout).toContain(`${count}/${count} processed`);
    expect(replay.stdout).toContain(`${count} of ${count} replayed`);
    expect(replay.stdout.split('\n').filter((l) => l.startsWith('replayed '))).toHaveLength(count);

    const byState = await db.sql<{ status: string; retry_count: number; error_reason: string | null; n: number }[]>`
      select status, retry_count, error_reason, count(*)::int as n from notifications group by 1, 2, 3`;
    expect(byState).toEqual([{ status: 'PENDING', retry_count: 0, error_reason: null, n: count }]);
    const queued = await redis.lrange(keys.queue, 0, -1);
    expect(queued).toHaveLength(count);
    expect(new Set(queued)).toEqual(new Set(ids));
    expect(await redis.llen(keys.dlq)).toBe(0);
  });
});

describe('dlq usage errors', () => {
  let db: TestDatabase;
  let keys: QueueKeys;
  let env: Record<string, string>;
  let redis: Redis;
  let deadId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    keys = testQueueKeys();
    env = serviceEnv(db, keys);
    redis = connectTestRedis();
    deadId = randomUUID();
    await db.sql`
      insert into notifications (id, user_id, type, body, recipient, status, retry_count, error_reason, dead_lettered_at)
      values (${deadId}, 'usage-user', 'WEBHOOK', 'b', 'http://127.0.0.1:9/hook', 'FAILED', 3, 'webhook answered 500', now())`;
    await redis.lpush(keys.dlq, deadId);
  });

  afterAll(async () => {
    redis?.disconnect();
    await db?.drop();
  });

  it.each([
    { args: ['frobnicate'], says: 'unknown command "frobnicate"' },
    { args: [], says: 'no command given' },
    { args: ['replay', 'not-a-uuid'], says: 'not a notification id: not-a-uuid' },
    { args: ['replay'], says: 'replay takes either --all or one or more ids' },
    { args: ['replay', '--all', '00000000-0000-4000-8000-000000000000'], says: 'replay takes either --all or one or more ids' },
    { args: ['purge', '00000000-0000-4000-8000-000000000000'], says: 'purge takes no ids' },
    { args: ['list', '--bogus'], says: '--bogus' },
  ])('exits 2 with the usage for `dlq $args`, changing nothing', async ({ args, says }) => {
    const result = await runScript('dlq', args, env);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain(says);
    expect(result.stdout).toContain('usage: npm run dlq');
    expect(await redis.lrange(keys.dlq, 0, -1)).toEqual([deadId]);
    expect(await redis.llen(keys.queue)).toBe(0);
    const row = await storedNotification(db.sql, deadId);
    expect(row.status).toBe('FAILED');
    expect(row.retry_count).toBe(3);
  });
});

/** The processes whose parent is `pid`, with their command lines. */
function childProcesses(pid: number): { pid: number; args: string }[] {
  let listing: string;
  try {
    listing = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return listing
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
}

/** When a process started (from /proc), so a later check cannot mistake a reused pid for it; undefined once it is gone. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

describe('npm start (cmd/start.ts)', () => {
  const databases: string[] = [];
  const processes: ServiceProcess[] = [];
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    ({ receiver } = await startScenarioReceiver());
  });

  /** The API and worker processes npm start ran in the current test. */
  const children: number[] = [];
  /** Their start times, so cleanup only ever ends those very processes. */
  const startTimes = new Map<number, string | undefined>();

  afterEach(async () => {
    // A test that failed half-way may leave npm start or its children running: they are in process
    // groups of their own, so ending npm start alone would leave them.
    for (const p of processes.splice(0)) {
      if (!p.running) continue;
      remember(childProcesses(p.child.pid!).map((c) => c.pid));
      p.signal('SIGTERM');
      await p.exitWithin(20_000).catch(() => p.kill());
    }
    for (const pid of children.splice(0)) {
      const started = startTimes.get(pid);
      if (started !== undefined && startTimeOf(pid) === started) process.kill(pid, 'SIGKILL');
    }
    startTimes.clear();
  });

  function remember(pids: number[]): void {
    for (const pid of pids) {
      if (startTimes.has(pid)) continue;
      startTimes.set(pid, startTimeOf(pid));
      children.push(pid);
    }
  }

  afterAll(async () => {
    await receiver?.close();
    for (const name of databases) await dropDatabase(name);
  });

  /** The service processes (API and worker) run below `pid`, however deep; tsx may run a helper of its own next to them. */
  function serviceChildren(pid: number): { pid: number; args: string }[] {
    const services = descendants(pid).filter((c) => /cmd\/(api|worker)\.ts/.test(c.args));
    remember(services.map((c) => c.pid));
    return services;
  }

  function descendants(pid: number): { pid: number; args: string }[] {
    return childProcesses(pid).flatMap((c) => [c, ...descendants(c.pid)]);
  }

  /**
   * npm start in a process group of its own, on a database it creates, once both children are up:
   * `cmd/start.ts` itself, or with `viaNpm` as the README says, `npm start`.
   */
  async function startInGroup(viaNpm = false): Promise<{ start: ServiceProcess; port: number; services: { pid: number; args: string }[] }> {
    const database = unusedDatabase();
    databases.push(database.name);
    const port = await freePort();
    const env = serviceEnv(database, testQueueKeys(), { PORT: String(port) });
    const start = viaNpm ? ServiceProcess.npmRun('start', env, { ownProcessGroup: true }) : ServiceProcess.start('start', env, [], { ownProcessGroup: true });
    processes.push(start);
    await start.waitForLog('api listening', 40_000);
    await start.waitForLog('worker started', 40_000);
    return { start, port, services: serviceChildren(start.child.pid!) };
  }

  /** Both children logged their graceful stop, and nothing answers on the API's port any more. */
  async function bothStoppedGracefully(start: ServiceProcess, port: number): Promise<void> {
    await start.closed;
    for (const msg of ['api stopped', 'worker stopped']) expect(start.logs.some((l) => l.msg === msg), msg).toBe(true);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  }

  it.each([
    { how: 'SIGINT to npm start alone', group: false },
    { how: 'Ctrl-C, SIGINT to its whole process group', group: true },
  ])(
    'creates and migrates a database that does not exist, serves the API, delivers, and stops both children with exit code 0 on $how',
    async ({ group }) => {
      const database = unusedDatabase();
      databases.push(database.name);
      expect(await databaseExists(database.name)).toBe(false);
      const port = await freePort();
      const keys = testQueueKeys();
      const start = ServiceProcess.start('start', serviceEnv(database, keys, { PORT: String(port) }), [], { ownProcessGroup: group });
      processes.push(start);

      const listening = await start.waitForLog('api listening', 40_000);
      expect(listening.port).toBe(port);
      await start.waitForLog('worker started', 40_000);
      expect(await databaseExists(database.name)).toBe(true);

      const sql = connectDatabase(database.url, { max: 1 });
      try {
        const applied = (await sql<{ name: string }[]>`select name from schema_migrations order by name`).map((r) => r.name);
        const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
        expect(applied).toEqual(files);

        const apiUrl = `http://127.0.0.1:${port}`;
        await waitFor('the API to be ready', async () => (await fetch(`${apiUrl}/readyz`)).status === 200);
        const created = await postNotification(apiUrl, { user_id: 'start-user', type: 'WEBHOOK', body: 'via npm start', to: receiver.url });
        await statusReached(sql, created.id, 'SENT');
        expect(receiver.forId(created.id)).toHaveLength(1);
        const answered = (await (await fetch(`${apiUrl}/notifications/${created.id}`)).json()) as { status: string };
        expect(answered.status).toBe('SENT');

        const services = serviceChildren(start.child.pid!);
        expect(services.map((c) => /cmd\/(api|worker)\.ts/.exec(c.args)![1]).sort()).toEqual(['api', 'worker']);

        if (group) start.signalGroup('SIGINT');
        else start.signal('SIGINT');
        expect(await start.exitWithin(30_000)).toEqual({ code: 0, signal: null });
        expect(start.logs.some((l) => l.msg === 'api stopped')).toBe(true);
        expect(start.logs.some((l) => l.msg === 'worker stopped')).toBe(true);
        expect(start.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown failed'))).toEqual([]);
        for (const pid of children) expect(isProcessAlive(pid), `child ${pid} still running`).toBe(false);
        await expect(fetch(`${apiUrl}/healthz`)).rejects.toThrow();
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  );

  it('stops the API and exits 1 when the worker is SIGKILLed', async () => {
    const { start, services } = await startInGroup();
    const worker = services.find((c) => /cmd\/worker\.ts/.test(c.args));
    expect(worker).toBeDefined();

    process.kill(worker!.pid, 'SIGKILL');
    const exit = await start.exitWithin(30_000);
    // 1, as for any child that did not exit cleanly (not Node's 13 for a top-level await left hanging).
    expect(exit.code).toBe(1);
    expect(start.logs.some((l) => l.msg === 'api stopped')).toBe(true);
    await waitFor('both children to end', () => children.every((pid) => !isProcessAlive(pid)), 10_000);
  });

  it('stops both children gracefully and exits 0 when npm start, run through npm, gets SIGTERM alone', async () => {
    const { start, port, services } = await startInGroup(true);
    expect(services.map((c) => /cmd\/(api|worker)\.ts/.exec(c.args)![1]).sort()).toEqual(['api', 'worker']);

    start.signal('SIGTERM');
    expect(await start.exitWithin(30_000)).toEqual({ code: 0, signal: null });
    for (const { pid } of services) expect(isProcessAlive(pid), `process ${pid} outlived npm start`).toBe(false);
    await bothStoppedGracefully(start, port);
  });

  it('when npm start is SIGKILLed with its process group, its API and worker notice and stop gracefully on their own, freeing the port', async () => {
    const { start, port, services } = await startInGroup();
    expect(services).toHaveLength(2);

    start.signalGroup('SIGKILL');
    expect(await start.exitWithin(10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor('both children to end', () => services.every(({ pid }) => !isProcessAlive(pid)), 15_000);
    await bothStoppedGracefully(start, port);
    for (const stopping of [/^api stopping/, /^worker stopping/]) {
      expect(start.logs.find((l) => stopping.test(String(l.msg)))?.cause).toBe('parent exited');
    }
  });

  it('passes a terminal hangup (SIGHUP) on, so neither child outlives npm start', async () => {
    const { start, port, services } = await startInGroup();
    expect(services).toHaveLength(2);
    expect(children).toHaveLength(2);

    start.signal('SIGHUP');
    await start.exitWithin(30_000);
    await waitFor('both children to end', () => children.every((pid) => !isProcessAlive(pid)), 10_000);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});

describe('configuration errors', () => {
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = serviceEnv(db, testQueueKeys());
  });

  afterAll(async () => {
    await db?.drop();
  });

  it.each([
    { script: 'worker', variable: 'MAX_RETRIES', value: 'abc' },
    { script: 'api', variable: 'PORT', value: '99999' },
    { script: 'worker', variable: 'LEASE_MS', value: '500' },
    { script: 'start', variable: 'MAX_RETRIES', value: 'abc' },
  ])('$script with $variable=$value exits 1 printing one line that names the variable', async ({ script, variable, value }) => {
    const p = ServiceProcess.start(script, { ...env, PORT: '0', [variable]: value });
    try {
      const exit = await p.exitWithin(CONFIG_EXIT_TIMEOUT_MS);
      expect(exit).toEqual({ code: 1, signal: null });
      expect(p.output).toHaveLength(1);
      expect(p.output[0]).toContain(variable);
      expect(p.output[0]).toMatch(/^configuration error: /);
    } finally {
      if (p.running) await p.kill();
    }
  });
});
