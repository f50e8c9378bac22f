import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHECK_TIMEOUT_MS, ELECTION_INTERVAL_MS } from '../../internal/worker/maintenance/leaderElection.ts';
import { parseMetrics, valueOf } from '../support/metricsText.ts';
import type { LogLine } from '../support/serviceProcess.ts';
import { serviceEnv, testQueueKeys, type TestDatabase } from '../support/testEnvironment.ts';
import { isRunning, TestScope, type RunningWorker } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

/** A follower's next try comes within the jittered election interval; the rest is room for a loaded machine. */
const TAKEOVER_MS = ELECTION_INTERVAL_MS * 1.2 + CHECK_TIMEOUT_MS + 2000;

const gained = (l: LogLine) => l.msg === 'maintenance leadership gained';

interface Started extends RunningWorker {
  metricsUrl: string;
}

/** Whether the worker's own registry says it leads (`herald_maintenance_leader`). */
async function leaderGauge(worker: Started): Promise<number | undefined> {
  const res = await fetch(`${worker.metricsUrl}/metrics`);
  return valueOf(parseMetrics(await res.text()), 'herald_maintenance_leader');
}

describe('maintenance leadership between worker processes', () => {
  let scope: TestScope;
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeEach(async () => {
    scope = new TestScope();
    db = await scope.database();
    env = serviceEnv(db, testQueueKeys());
  });
  afterEach(async () => {
    await scope.close();
  });

  async function worker(): Promise<Started> {
    const started = await scope.worker(env);
    const listening = await started.process.waitForLog('metrics listening');
    return { ...started, metricsUrl: `http://127.0.0.1:${String(listening.port)}` };
  }

  /** Starts two workers and waits for one of them to lead; returns [leader, follower]. */
  async function twoWorkers(): Promise<[Started, Started]> {
    const a = await worker();
    const b = await worker();
    await waitFor('one worker to lead', () => a.process.logs.some(gained) || b.process.logs.some(gained), TAKEOVER_MS);
    // Long enough for the other to have tried, and failed, several times.
    await new Promise((r) => setTimeout(r, 2 * ELECTION_INTERVAL_MS));
    const [leader, follower] = a.process.logs.some(gained) ? [a, b] : [b, a];
    expect(follower.process.logs.some(gained)).toBe(false);
    expect(await leaderGauge(leader)).toBe(1);
    expect(await leaderGauge(follower)).toBe(0);
    return [leader, follower];
  }

  it('only one of two workers leads; when the leader is SIGKILLed, the other takes over within the election interval', async () => {
    const [leader, follower] = await twoWorkers();

    await leader.process.kill();
    const killedAt = Date.now();
    await follower.process.waitForLog(gained, TAKEOVER_MS);
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_MS);
    expect(await leaderGauge(follower)).toBe(1);
    expect(isRunning(follower.process)).toBe(true);
  });

  it('a leader stopped with SIGTERM gives leadership up on its way out, and the other takes over', async () => {
    const [leader, follower] = await twoWorkers();

    leader.process.signal('SIGTERM');
    const lost = await leader.process.waitForLog('maintenance leadership lost');
    expect(lost.reason).toBe('stopping');
    expect((await leader.process.exitWithin(15_000)).code).toBe(0);
    await follower.process.waitForLog(gained, TAKEOVER_MS);
    expect(await leaderGauge(follower)).toBe(1);
  });
});
