import { Random } from '../support/fuzzRandom.ts';

/** The processes of a chaos run, each restarted in its slot after a fault ends it. */
export const API_SLOTS = ['api-1', 'api-2'] as const;
export const WORKER_SLOTS = ['worker-1', 'worker-2', 'worker-3'] as const;
export const SLOTS = [...API_SLOTS, ...WORKER_SLOTS] as const;
export type SlotName = (typeof SLOTS)[number];

export const FAULT_KINDS = ['SIGKILL', 'SIGSTOP', 'SIGTERM', 'postgres-cut', 'redis-cut', 'redis-flush'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * One planned fault: `atMs` after the load started. A signal names one process; a cut names the
 * one process whose connections to the dependency are cut, or `all` for an outage every process
 * sees; a flush names no process. `durationMs` is how long a SIGSTOP or a cut lasts.
 */
export interface PlannedFault {
  atMs: number;
  kind: FaultKind;
  target: SlotName | 'all' | 'redis';
  durationMs: number;
}

/** How often faults come (on average) and how long the lasting ones last. */
const MEAN_GAP_MS = 3500;
const MIN_GAP_MS = 500;
/** No fault starts this close to the end of the load, so the last ones end while load still runs. */
const QUIET_TAIL_MS = 3000;
const FAULT_WEIGHTS: readonly (readonly [number, FaultKind])[] = [
  [3, 'SIGKILL'],
  [2, 'SIGSTOP'],
  [2, 'SIGTERM'],
  [3, 'postgres-cut'],
  [2, 'redis-cut'],
  [1, 'redis-flush'],
];

/**
 * The faults of a run of `seconds`, from the seed alone: the same seed gives the same list.
 * Gaps are exponential (a Poisson process) around `MEAN_GAP_MS`, so faults sometimes come close
 * together and overlap, as they do in real outages; the first six are one of each kind.
 */
export function planFaults(seed: number, seconds: number): PlannedFault[] {
  const random = new Random(seed ^ 0x5eed_fa17);
  const endMs = seconds * 1000 - QUIET_TAIL_MS;
  const faults: PlannedFault[] = [];
  // Every kind once first, in the seed's order, so even a short run sees each of them.
  const firstRound = shuffled(random, FAULT_KINDS);
  let at = 2000;
  for (;;) {
    at += Math.max(MIN_GAP_MS, Math.round(-Math.log(1 - random.next()) * MEAN_GAP_MS));
    if (at >= endMs) return faults;
    const kind = firstRound.shift() ?? random.weighted(FAULT_WEIGHTS.map(([w, k]) => [w, () => k] as const));
    faults.push({ atMs: at, kind, ...shape(random, kind) });
  }
}

function shuffled<T>(random: Random, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

function shape(random: Random, kind: FaultKind): Pick<PlannedFault, 'target' | 'durationMs'> {
  switch (kind) {
    case 'SIGKILL':
    case 'SIGTERM':
      return { target: random.pick(SLOTS), durationMs: 0 };
    case 'SIGSTOP':
      // Shorter than a lease sometimes, longer other times: both a pause and a takeover.
      return { target: random.pick(SLOTS), durationMs: random.int(1000, 6000) };
    case 'postgres-cut':
    case 'redis-cut':
      return { target: random.chance(0.3) ? 'all' : random.pick(SLOTS), durationMs: random.int(500, 5000) };
    case 'redis-flush':
      return { target: 'redis', durationMs: 0 };
  }
}
