import { afterEach } from 'vitest';
import { connectBlockingRedis, type Redis } from '../../internal/platform/redis.ts';
import { Worker, type WorkerDeps } from '../../internal/worker/worker.ts';
import { testRedisUrl } from './testEnvironment.ts';

/** Starts `Worker`s inside the test process; see `useInProcessWorkers`. */
export interface InProcessWorkers {
  /**
   * A started worker on `deps`, popping through a blocking Redis connection of its own. Its leases
   * are renewed through `deps.renewals` when given (a client of one connection, as in production),
   * else through `deps.sql`.
   */
  start(deps: Omit<WorkerDeps, 'blocking' | 'renewals'> & Partial<Pick<WorkerDeps, 'renewals'>>): Worker;
}

/**
 * Workers run in the test process, as `cmd/worker.ts` runs its one: each test's are stopped
 * (100 ms of grace; stopping one the test stopped already does nothing more) and their blocking
 * connections closed after it, whether it passed or not.
 */
export function useInProcessWorkers(): InProcessWorkers {
  const started: { worker: Worker; blocking: Redis }[] = [];
  afterEach(async () => {
    for (const { worker, blocking } of started.splice(0)) {
      await worker.stop(100);
      blocking.disconnect();
    }
  });
  return {
    start(deps) {
      const blocking = connectBlockingRedis(testRedisUrl(), 1);
      const worker = new Worker({ ...deps, renewals: deps.renewals ?? deps.sql, blocking });
      started.push({ worker, blocking });
      worker.start();
      return worker;
    },
  };
}
