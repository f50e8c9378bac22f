import { describe, expect, inject, it } from 'vitest';
import { runChaos } from '../chaos/chaosRun.ts';
import { renderReport } from '../chaos/reportTable.ts';

/**
 * The run CI makes: a minute of load and faults, always the same ones. Half the default rate: CI runs
 * this beside the other test files on two cores, and a starved API answers 503 to nearly everything.
 */
const SECONDS = 60;
const SEED = 20261208;
const RATE = 50;

describe('chaos run', () => {
  it(
    `a ${SECONDS} s run (seed ${SEED}) loses nothing, leaves nothing stuck and repeats nothing without a fault`,
    async () => {
      const lines: string[] = [];
      const report = await runChaos({
        seconds: SECONDS,
        seed: SEED,
        rate: RATE,
        postgresUrl: inject('postgresUrl'),
        redisUrl: inject('redisUrl'),
        // The run's database and keys start with the test run's id, so its teardown removes what a crash left.
        namePrefix: inject('runId'),
        keepLogs: false,
        say: (line) => lines.push(line),
      });
      const table = `${lines.join('\n')}\n${renderReport(report)}`;
      // The run did what it is for: load was accepted and delivered, and faults of every kind hit.
      expect(report.answers['201'] ?? 0, table).toBeGreaterThan(SECONDS * RATE * 0.1);
      expect(report.webhooksAccepted, table).toBeGreaterThan(0);
      for (const [kind, f] of Object.entries(report.faults)) expect(f.applied, `${kind} never applied\n${table}`).toBeGreaterThan(0);
      expect(report.quiescedInMs, table).toBeDefined();
      expect(report.failures, table).toEqual([]);
    },
    // Setup, a minute of load, quiescence (up to a minute) and the stops: about two minutes.
    240_000,
  );
});
