import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import {
  CHECK_TIMEOUT_MS,
  ELECTION_INTERVAL_MS,
  LEADER_SESSION_IDLE_LIMIT_MS,
} from '../../internal/worker/maintenance/leaderElection.ts';
import { Maintainer } from '../../internal/worker/maintenance/maintainer.ts';
import type { MaintenanceJob } from '../../internal/worker/maintenance/maintenanceJob.ts';
import type { TestDatabase } from '../support/testEnvironment.ts';
import type { TcpProxy } from '../support/tcpProxy.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

/** The longest a follower waits before its next try: the jittered election interval. */
const NEXT_TRY_MS = ELECTION_INTERVAL_MS * 1.2;
/** Room for a loaded machine on top of the intervals the code promises. */
const SLACK_MS = 1500;

/** A job that counts its runs, and throws on each when told to. */
class CountingJob implements MaintenanceJob {
  runs = 0;
  constructor(
    readonly name: string,
    readonly intervalMs: number,
    private readonly fails = false,
  ) {}

  async run(): Promise<Record<string, number>> {
    this.runs++;
    if (this.fails) throw new Error(`${this.name} broke`);
    return { runs: 1 };
  }
}

interface Started {
  maintainer: Maintainer;
  job: CountingJob;
  logs: { msg: string; job?: string; reason?: string }[];
  leading: boolean[];
}

describe('Maintainer: maintenance jobs on one elected worker', () => {
  const scope = useTestScope();
  let db: TestDatabase;

  beforeEach(async () => {
    db = await scope.database();
  });

  /** A maintainer whose lock session connects to `url`, with one counting job unless given others. */
  function start(url = db.url, jobs?: MaintenanceJob[]): Started {
    const session: Sql = connectDatabase(url, { max: 1, connectTimeoutSeconds: 2 });
    const job = new CountingJob('counting', 50);
    const logs: Started['logs'] = [];
    const leading: boolean[] = [];
    const maintainer = new Maintainer({
      jobs: jobs ?? [job],
      leaderSession: session,
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Started['logs'][number]) }),
      onLeadershipChange: (l) => leading.push(l),
    });
    scope.defer(() => session.end({ timeout: 1 }));
    scope.defer(() => maintainer.stop());
    maintainer.start();
    return { maintainer, job, logs, leading };
  }

  /**
   * A leader that reaches PostgreSQL through a proxy the test can cut or freeze, and a second
   * maintainer, started once the first leads.
   */
  async function leaderBehindProxy(): Promise<{ proxy: TcpProxy; leader: Started; other: Started }> {
    const proxy = await scope.proxy(db.url);
    scope.defer(() => proxy.restore());
    const leader = start(proxy.urlFor(db.url));
    await waitFor('the first maintainer to lead', () => leader.maintainer.isLeader, NEXT_TRY_MS + SLACK_MS);
    return { proxy, leader, other: start() };
  }

  /** Holders of the maintenance lock in this test's database (other test files hold theirs in their own). */
  async function lockHolders(): Promise<number> {
    const [row] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_locks
      where locktype = 'advisory' and classid = ${0x68726c64}::oid and granted
        and database = (select oid from pg_database where datname = current_database())`;
    return row!.n;
  }

  it('runs each job on its own interval while leading; a job that throws logs one line a run and the others go on', async () => {
    const failing = new CountingJob('failing', 50, true);
    const fast = new CountingJob('fast', 50);
    const slow = new CountingJob('slow', 5000);
    const { maintainer, logs, leading } = start(db.url, [failing, fast, slow]);
    await waitFor('leadership', () => maintainer.isLeader, NEXT_TRY_MS + SLACK_MS);
    await waitFor('several runs of each quick job and the first of the slow one', () => failing.runs >= 5 && fast.runs >= 5 && slow.runs >= 1, 5000);
    await maintainer.stop();

    expect(slow.runs).toBe(1);
    const failures = logs.filter((l) => l.msg === 'maintenance job failed; trying again next interval');
    expect(failures.length).toBe(failing.runs);
    expect(new Set(failures.map((l) => l.job))).toEqual(new Set(['failing']));
    expect(logs.filter((l) => l.msg === 'maintenance job done' && l.job === 'fast')).toHaveLength(fast.runs);
    expect(leading).toEqual([true, false]);
    expect(logs.map((l) => l.msg)).toContain('maintenance leadership gained');
    expect(logs.find((l) => l.msg === 'maintenance leadership lost')?.reason).toBe('stopping');
    // Stopped means stopped: no run after stop() returned.
    const after = [failing.runs, fast.runs];
    await new Promise((r) => setTimeout(r, 300));
    expect([failing.runs, fast.runs]).toEqual(after);
    expect(await lockHolders()).toBe(0);
  });

  it('with two maintainers only one runs jobs; when it stops, the other takes over within one election interval', async () => {
    const a = start();
    const b = start();
    await waitFor('a leader', () => a.maintainer.isLeader || b.maintainer.isLeader, NEXT_TRY_MS + SLACK_MS);
    await new Promise((r) => setTimeout(r, 2 * ELECTION_INTERVAL_MS));
    const [leader, follower] = a.maintainer.isLeader ? [a, b] : [b, a];
    expect(follower.maintainer.isLeader).toBe(false);
    expect(leader.job.runs).toBeGreaterThan(5);
    expect(follower.job.runs).toBe(0);
    expect(follower.leading).toEqual([]);
    expect(await lockHolders()).toBe(1);

    await leader.maintainer.stop();
    const stoppedAt = Date.now();
    await waitFor('the follower to take over', () => follower.maintainer.isLeader, NEXT_TRY_MS + SLACK_MS);
    expect(Date.now() - stoppedAt).toBeLessThan(NEXT_TRY_MS + SLACK_MS);
    await waitFor('the new leader to run its job', () => follower.job.runs > 0, 2000);
    expect(follower.leading).toEqual([true]);
    expect(await lockHolders()).toBe(1);
  });

  it('a leader whose database connection is cut stops running jobs, and another takes over', async () => {
    const { proxy, leader: cutOff, other } = await leaderBehindProxy();

    proxy.cut();
    const cutAt = Date.now();
    await waitFor('the cut-off leader to step down', () => !cutOff.maintainer.isLeader, NEXT_TRY_MS + CHECK_TIMEOUT_MS + SLACK_MS);
    const runsWhenLost = cutOff.job.runs;
    await waitFor('the other maintainer to take over', () => other.maintainer.isLeader, 2 * NEXT_TRY_MS + SLACK_MS);
    expect(Date.now() - cutAt).toBeLessThan(2 * NEXT_TRY_MS + SLACK_MS);
    await waitFor('the new leader to run its job', () => other.job.runs > 0, 2000);
    await new Promise((r) => setTimeout(r, 500));
    expect(cutOff.job.runs).toBe(runsWhenLost);
    expect(cutOff.leading).toEqual([true, false]);
    expect(cutOff.logs.find((l) => l.msg === 'maintenance leadership lost')?.reason).toMatch(/lock/);
  });

  it('a leader whose network goes silent steps down, and PostgreSQL frees its lock for another once its session sits idle', async () => {
    const { proxy, leader: silent, other } = await leaderBehindProxy();

    proxy.freeze();
    const frozenAt = Date.now();
    await waitFor('the silent leader to step down', () => !silent.maintainer.isLeader, NEXT_TRY_MS + CHECK_TIMEOUT_MS + SLACK_MS);
    const steppedDownAt = Date.now();
    expect(other.maintainer.isLeader).toBe(false);
    await waitFor('the other maintainer to take over', () => other.maintainer.isLeader, LEADER_SESSION_IDLE_LIMIT_MS + 2 * NEXT_TRY_MS + SLACK_MS);
    const tookOverAt = Date.now();
    // Never two leaders: the silent one had stopped before PostgreSQL let the lock go.
    expect(steppedDownAt).toBeLessThan(tookOverAt);
    expect(tookOverAt - frozenAt).toBeGreaterThanOrEqual(LEADER_SESSION_IDLE_LIMIT_MS - NEXT_TRY_MS);
    expect(await lockHolders()).toBe(1);
  });
});
