import { setTimeout as sleep } from 'node:timers/promises';
import type { TcpProxy } from '../support/tcpProxy.ts';
import type { ChaosEnvironment } from './chaosEnvironment.ts';
import type { FaultKind, PlannedFault, SlotName } from './faultSchedule.ts';
import type { Supervisor } from './supervisor.ts';

/**
 * A fault as it happened: from `startedAt` to `endedAt` (the same instant for a kill or a flush;
 * for SIGTERM, until the process exited). `slots` are the processes it hit; for a signal,
 * `workerId` is the worker it hit. `skipped` says why it was not applied (its process was not up).
 */
export interface AppliedFault {
  kind: FaultKind;
  target: PlannedFault['target'];
  slots: SlotName[];
  startedAt: number;
  endedAt: number;
  workerId?: string;
  skipped?: string;
}

/**
 * Applies a fault schedule to the run's processes, proxies and Redis keys, and records each fault
 * with the time it held. A cut drops every live connection through the slot's proxy and refuses
 * new ones until it ends; two cuts of one proxy that overlap end when the later one does.
 */
export class FaultInjector {
  readonly applied: AppliedFault[] = [];
  private readonly cutDepth = new Map<TcpProxy, number>();
  private readonly pending = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly env: ChaosEnvironment,
  ) {}

  /** Runs `faults` relative to `startedAt`, until their list ends or `stop()`. */
  async run(faults: PlannedFault[], startedAt: number): Promise<void> {
    for (const fault of faults) {
      const wait = startedAt + fault.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) return;
      this.track(this.apply(fault));
    }
  }

  /** Stops applying faults and waits for those under way to end (cuts restored, stops continued). */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Faults applied (not skipped) so far, by kind. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const f of this.applied) if (!f.skipped) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
    return counts;
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private async apply(fault: PlannedFault): Promise<void> {
    const startedAt = Date.now();
    const record: AppliedFault = { kind: fault.kind, target: fault.target, slots: [], startedAt, endedAt: startedAt };
    this.applied.push(record);
    switch (fault.kind) {
      case 'SIGKILL':
      case 'SIGTERM': {
        const slot = fault.target as SlotName;
        record.slots = [slot];
        record.workerId = this.supervisor.slot(slot).current?.workerId;
        if (!(await this.supervisor.end(slot, fault.kind))) record.skipped = `${slot} was not up`;
        record.endedAt = Date.now();
        return;
      }
      case 'SIGSTOP': {
        const slot = fault.target as SlotName;
        record.slots = [slot];
        record.workerId = this.supervisor.slot(slot).current?.workerId;
        if (!this.supervisor.pause(slot, fault.durationMs)) {
          record.skipped = `${slot} was not up`;
          return;
        }
        await sleep(fault.durationMs);
        record.endedAt = Date.now();
        return;
      }
      case 'postgres-cut':
      case 'redis-cut': {
        const slots = fault.target === 'all' ? [...this.supervisor.slots.keys()] : [fault.target as SlotName];
        record.slots = slots;
        const proxies = slots.map((s) => (fault.kind === 'postgres-cut' ? this.supervisor.slot(s).postgres : this.supervisor.slot(s).redis));
        for (const p of proxies) this.cut(p);
        await sleep(fault.durationMs);
        for (const p of proxies) this.restore(p);
        record.endedAt = Date.now();
        return;
      }
      case 'redis-flush':
        await this.env.deleteKeys().catch((err: unknown) => (record.skipped = `could not delete the keys: ${(err as Error).message}`));
        record.endedAt = Date.now();
    }
  }

  private cut(proxy: TcpProxy): void {
    this.cutDepth.set(proxy, (this.cutDepth.get(proxy) ?? 0) + 1);
    proxy.cut();
  }

  private restore(proxy: TcpProxy): void {
    const depth = (this.cutDepth.get(proxy) ?? 1) - 1;
    this.cutDepth.set(proxy, depth);
    if (depth === 0) proxy.restore();
  }
}
