import { setTimeout as sleep } from 'node:timers/promises';
import { BenchProcess, type Exit } from '../../bench/lib/processes.ts';
import { TcpProxy } from '../support/tcpProxy.ts';
import { processEnv, type ChaosEnvironment } from './chaosEnvironment.ts';
import { SLOTS, type SlotName } from './faultSchedule.ts';

/** How long a process may take to start (tsx compiles on a busy machine), and to exit after SIGTERM. */
const [START_TIMEOUT_MS, STOP_TIMEOUT_MS] = [60_000, 20_000];

/** One process started in a slot, from its start to its exit. */
export interface Instance {
  slot: SlotName;
  process: BenchProcess;
  startedAt: number;
  /** Set once it logged that it is ready: the API's URL, the worker's id (its `locked_by`). */
  url?: string;
  workerId?: string;
  endedAt?: number;
  exit?: Exit;
  /** The signal the run sent to end it, and when; an exit without one is a process that died on its own. */
  told?: 'SIGKILL' | 'SIGTERM';
  toldAt?: number;
}

/** A process that ended without being told to, or did not stop as told: with its log's last lines. */
export interface ProcessFailure {
  slot: SlotName;
  what: string;
  at: number;
  tail: string;
}

/** A slot: its proxies to PostgreSQL and Redis (kept across restarts) and its processes in turn. */
export class Slot {
  readonly instances: Instance[] = [];
  /** While SIGSTOPped: when it was stopped. */
  stoppedAt: number | undefined;

  constructor(
    readonly name: SlotName,
    readonly postgres: TcpProxy,
    readonly redis: TcpProxy,
  ) {}

  get kind(): 'api' | 'worker' {
    return this.name.startsWith('api') ? 'api' : 'worker';
  }

  get current(): Instance | undefined {
    const last = this.instances.at(-1);
    return last && last.endedAt === undefined ? last : undefined;
  }

  /** Running, ready, neither stopped nor being ended: a fault may hit it, a client may reach it. */
  get up(): boolean {
    const current = this.current;
    if (current === undefined || current.told !== undefined || this.stoppedAt !== undefined) return false;
    return current.url !== undefined || current.workerId !== undefined;
  }
}

/**
 * Starts the run's two APIs and three workers, each behind proxies of its own, and keeps them
 * running: a process the run ended is started again in its slot, and one that ended on its own is
 * recorded as a failure (with its log's last lines) and started again too, so the run goes on.
 */
export class Supervisor {
  readonly slots: Map<SlotName, Slot>;
  readonly failures: ProcessFailure[] = [];
  /** A process that ended on its own is started again after this pause (one the run ended, at once). */
  private static readonly RESTART_PAUSE_MS = 500;
  private stopping = false;

  private constructor(
    private readonly env: ChaosEnvironment,
    slots: Slot[],
  ) {
    this.slots = new Map(slots.map((s) => [s.name, s]));
  }

  static async start(env: ChaosEnvironment): Promise<Supervisor> {
    const pg = new URL(env.databaseUrl);
    const redis = new URL(env.redisUrl);
    const slots = await Promise.all(
      SLOTS.map(async (name) => {
        const [p, r] = await Promise.all([
          TcpProxy.start({ host: pg.hostname, port: Number(pg.port || 5432) }),
          TcpProxy.start({ host: redis.hostname, port: Number(redis.port || 6379) }),
        ]);
        return new Slot(name, p, r);
      }),
    );
    const supervisor = new Supervisor(env, slots);
    await Promise.all(slots.map((s) => supervisor.launch(s)));
    return supervisor;
  }

  slot(name: SlotName): Slot {
    return this.slots.get(name)!;
  }

  /** Every process ever started, in start order per slot. */
  get instances(): Instance[] {
    return [...this.slots.values()].flatMap((s) => s.instances);
  }

  /** The URLs of the APIs a client can reach now (ready and not stopped). */
  reachableApis(): { slot: SlotName; url: string }[] {
    return [...this.slots.values()].filter((s) => s.kind === 'api' && s.up).map((s) => ({ slot: s.name, url: s.current!.url! }));
  }

  /** Ends the slot's process with `signal` (it is then started again); false when it was not up. */
  async end(name: SlotName, signal: 'SIGKILL' | 'SIGTERM'): Promise<boolean> {
    const slot = this.slot(name);
    const instance = slot.current;
    if (!instance || !slot.up) return false;
    tell(instance, signal);
    if (signal === 'SIGTERM') await this.awaitStop(instance);
    return true;
  }

  /** SIGSTOPs the slot's process for `ms`, then SIGCONTs it; false when it was not up. */
  pause(name: SlotName, ms: number): boolean {
    const slot = this.slot(name);
    const instance = slot.current;
    if (!instance || !slot.up) return false;
    slot.stoppedAt = Date.now();
    instance.process.child.kill('SIGSTOP');
    setTimeout(() => this.resume(slot), ms).unref();
    return true;
  }

  /** Waits until every slot is up again (after the faults stopped); false if one is not within `ms`. */
  async allUp(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ([...this.slots.values()].every((s) => s.up)) return true;
      await sleep(100);
    }
    return false;
  }

  /** SIGTERMs every process, as an operator stopping the service would; each must exit 0 in time. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots.values()) this.resume(slot);
    await Promise.all(
      [...this.slots.values()].map(async (slot) => {
        const instance = slot.current;
        if (!instance) return;
        tell(instance, 'SIGTERM');
        await this.awaitStop(instance);
      }),
    );
    await Promise.all([...this.slots.values()].flatMap((s) => [s.postgres.close(), s.redis.close()]));
  }

  /** Kills whatever still runs, without checks: the end of a run that failed. */
  killAll(): void {
    this.stopping = true;
    for (const instance of this.instances) instance.process.killNow();
  }

  private resume(slot: Slot): void {
    if (slot.stoppedAt === undefined) return;
    slot.stoppedAt = undefined;
    slot.current?.process.child.kill('SIGCONT');
  }

  /** A SIGTERMed process must exit 0 within STOP_TIMEOUT_MS; otherwise that is recorded and it is killed. */
  private async awaitStop(instance: Instance): Promise<void> {
    const exit = await Promise.race([instance.process.exited, sleep(STOP_TIMEOUT_MS).then(() => undefined)]);
    if (exit === undefined) {
      this.fail(instance, `did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM`);
      instance.process.killNow();
      await instance.process.exited;
    } else if (exit.code !== 0) {
      this.fail(instance, `exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM`);
    }
  }

  private async launch(slot: Slot): Promise<void> {
    const script = slot.kind === 'api' ? 'cmd/api.ts' : 'cmd/worker.ts';
    const env = {
      ...processEnv(this.env),
      PORT: '0',
      DATABASE_URL: slot.postgres.urlFor(this.env.databaseUrl),
      REDIS_URL: slot.redis.urlFor(this.env.redisUrl),
    };
    const process = BenchProcess.start(slot.name, script, env, { cwd: this.env.logDir });
    const instance: Instance = { slot: slot.name, process, startedAt: Date.now() };
    slot.instances.push(instance);
    void process.exited.then((exit) => this.onExit(slot, instance, exit));
    try {
      const line = await process.waitForLog(slot.kind === 'api' ? 'api listening' : 'worker started', START_TIMEOUT_MS);
      const logged = JSON.parse(line) as { port?: number; workerId?: string };
      if (slot.kind === 'api') instance.url = `http://127.0.0.1:${String(logged.port)}`;
      else instance.workerId = String(logged.workerId);
    } catch {
      // An exit is handled by onExit; a start that hangs is a failure of its own.
      if (instance.endedAt === undefined) {
        this.fail(instance, `did not become ready within ${START_TIMEOUT_MS / 1000} s`);
        tell(instance, 'SIGKILL');
      }
    }
  }

  private onExit(slot: Slot, instance: Instance, exit: Exit): void {
    instance.endedAt = Date.now();
    instance.exit = exit;
    if (slot.stoppedAt !== undefined) slot.stoppedAt = undefined;
    if (!instance.told) this.fail(instance, `exited on its own (code ${exit.code}, signal ${exit.signal})`);
    if (this.stopping) return;
    void sleep(instance.told ? 0 : Supervisor.RESTART_PAUSE_MS).then(() => {
      if (!this.stopping) return this.launch(slot);
    });
  }

  private fail(instance: Instance, what: string): void {
    this.failures.push({ slot: instance.slot, what, at: Date.now(), tail: shortTail(instance.process) });
  }
}

/** The log's last lines, each cut short: a crash's own lines, not pages of JSON stack traces. */
function shortTail(process: BenchProcess, lines = 8, lineChars = 160): string {
  return process
    .tail(lines)
    .split('\n')
    .map((line) => (line.length > lineChars ? `${line.slice(0, lineChars)}…` : line))
    .join('\n');
}

function tell(instance: Instance, signal: 'SIGKILL' | 'SIGTERM'): void {
  instance.told = signal;
  instance.toldAt = Date.now();
  instance.process.child.kill(signal);
}
