import { afterAll, afterEach } from 'vitest';
import type { Redis } from 'ioredis';
import type { FixtureLifetime } from './fixtureValue.ts';
import { PushService } from './pushService.ts';
import { ServiceProcess } from './serviceProcess.ts';
import { TestSmtpServer, type TestSmtpServerOptions } from './smtpServer.ts';
import { TcpProxy } from './tcpProxy.ts';
import type { QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { connectTestRedis, createTestDatabase, serviceEnv, testQueueKeys, type TestDatabase, type TestDatabaseOptions } from './testEnvironment.ts';
import { TwilioServer } from './twilioServer.ts';
import { WebhookReceiver, type Responder } from './webhookReceiver.ts';

/** A running `cmd/worker.ts` and the id it writes into `locked_by` and attempts' `worker_id`. */
export interface RunningWorker {
  process: ServiceProcess;
  id: string;
}

export interface RunningApi {
  process: ServiceProcess;
  url: string;
}

export interface ServicesOptions {
  /** The database the processes use; a new one of the scope's by default. */
  db?: TestDatabase;
  /** Settings for every process, on top of `serviceEnv`'s test timings. */
  env?: Record<string, string>;
  /** Settings for the API only. */
  apiEnv?: Record<string, string>;
  /** Settings for the workers only. */
  workerEnv?: Record<string, string>;
  workers?: number;
  /** Run the compiled processes of `dist/` (`npm run build`) with plain Node, as the image does. */
  compiled?: boolean;
}

/** What `TestScope.services` started, and the settings it started them with. */
export interface RunningServices {
  db: TestDatabase;
  keys: QueueKeys;
  env: Record<string, string>;
  api: RunningApi;
  workers: RunningWorker[];
  /** The first of `workers`. */
  worker: RunningWorker;
}

/**
 * Everything one test starts (databases, processes, proxies, receivers, Redis clients), released
 * in reverse order by `close()` whether the test passed or not. Processes are SIGKILLed, after a
 * SIGCONT in case the test left one stopped.
 */
export class TestScope {
  private readonly cleanups: (() => Promise<unknown> | unknown)[] = [];

  defer(cleanup: () => Promise<unknown> | unknown): void {
    this.cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    const failures: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length) throw new AggregateError(failures, 'test cleanup failed');
  }

  async database(options?: TestDatabaseOptions): Promise<TestDatabase> {
    const db = await createTestDatabase(options);
    this.defer(() => db.drop());
    return db;
  }

  redis(): Redis {
    const redis = connectTestRedis();
    this.defer(() => redis.disconnect());
    return redis;
  }

  async receiver(respond?: Responder): Promise<WebhookReceiver> {
    const receiver = await WebhookReceiver.start(respond);
    this.defer(() => receiver.close());
    return receiver;
  }

  /** A proxy in front of the server `url` names (PostgreSQL or Redis); use `proxy.urlFor(url)`. */
  async proxy(url: string): Promise<TcpProxy> {
    const u = new URL(url);
    const proxy = await TcpProxy.start({ host: u.hostname, port: Number(u.port || (u.protocol === 'redis:' ? 6379 : 5432)) });
    this.defer(() => proxy.close());
    return proxy;
  }

  /** Starts `cmd/api.ts` on a free port; resolves once it listens. */
  async api(env: Record<string, string>, options: { compiled?: boolean } = {}): Promise<RunningApi> {
    const api = this.process('api', { PORT: '0', ...env }, options);
    const listening = await api.waitForLog('api listening');
    return { process: api, url: `http://127.0.0.1:${String(listening.port)}` };
  }

  /** Starts `cmd/worker.ts`; resolves once it takes work. */
  async worker(env: Record<string, string>, options: { compiled?: boolean } = {}): Promise<RunningWorker> {
    const worker = this.process('worker', env, options);
    const started = await worker.waitForLog('worker started');
    return { process: worker, id: String(started.workerId) };
  }

  private process(script: string, env: Record<string, string>, options: { compiled?: boolean } = {}): ServiceProcess {
    const p = ServiceProcess.start(script, env, [], options);
    this.defer(async () => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.signal('SIGCONT');
      await p.kill();
    });
    return p;
  }

  /**
   * The service as `npm start` runs it, against a database of this scope's (or `options.db`) and
   * queue keys of its own: one API and `options.workers` workers (1 by default), each started once
   * it is ready. `apiEnv` and `workerEnv` go to one side only (a proxy's URL, say).
   */
  async services(options: ServicesOptions = {}): Promise<RunningServices> {
    const db = options.db ?? (await this.database());
    const keys = testQueueKeys();
    const env = serviceEnv(db, keys, options.env);
    const compiled = { compiled: options.compiled };
    const startingWorkers = Array.from({ length: options.workers ?? 1 }, () => this.worker({ ...env, ...options.workerEnv }, compiled));
    const [api, workers] = await Promise.all([this.api({ ...env, ...options.apiEnv }, compiled), Promise.all(startingWorkers)]);
    return { db, keys, env, api, workers, worker: workers[0]! };
  }

  /** A test SMTP server (`smtp.url` is an SMTP_URL), closed with the scope. */
  async smtp(options?: TestSmtpServerOptions): Promise<TestSmtpServer> {
    const smtp = await TestSmtpServer.start(options);
    this.defer(() => smtp.close());
    return smtp;
  }

  /** A Twilio-compatible Messages API (`twilio.url` is an SMS_PROVIDER_URL), closed with the scope. */
  async twilio(options?: Parameters<typeof TwilioServer.start>[0]): Promise<TwilioServer> {
    const twilio = await TwilioServer.start(options);
    this.defer(() => twilio.close());
    return twilio;
  }

  /** A Web Push service whose `subscribe()` makes subscriptions, closed with the scope. */
  async pushService(): Promise<PushService> {
    const push = await PushService.start();
    this.defer(() => push.close());
    return push;
  }
}

/** Whether the process has neither exited nor been killed. */
export function isRunning(p: ServiceProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/**
 * A scope closed after each test (`'test'`, the default) or after the file's last test (`'file'`):
 * what a test starts through it is released however the test ended.
 */
export function useTestScope(lifetime: FixtureLifetime = 'test'): TestScope {
  const scope = new TestScope();
  (lifetime === 'file' ? afterAll : afterEach)(() => scope.close());
  return scope;
}
