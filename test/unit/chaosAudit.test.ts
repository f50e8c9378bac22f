import { describe, expect, it } from 'vitest';
import { auditDeliveries, type AttemptRow } from '../chaos/deliveryAudit.ts';
import type { AppliedFault } from '../chaos/faultInjector.ts';
import type { Delivery } from '../chaos/flakyReceiver.ts';
import { Findings } from '../chaos/findings.ts';
import type { LoadRequest, Try } from '../chaos/loadGenerator.ts';
import { auditRequests, type StoredForMarker } from '../chaos/requestAudit.ts';
import type { Instance } from '../chaos/supervisor.ts';

// The chaos run's audit on made-up runs: each rule must be able to fail, and to let its allowed case pass.

const T0 = Date.parse('2026-12-08T01:00:00Z');
const API_URL = 'http://127.0.0.1:4000';
const instances = [
  { slot: 'api-1', url: API_URL, startedAt: T0 - 10_000 },
  { slot: 'worker-1', workerId: 'w1', startedAt: T0 - 10_000 },
] as unknown as Instance[];

function answered(status: number | undefined, at: number, extra: Partial<Try> = {}): Try {
  return { slot: 'api-1', url: API_URL, sentAt: at, answeredAt: at + 100, status, ids: [], ...extra };
}

function request(tries: Try[], keyed = false): LoadRequest {
  return { n: 1, marker: 'chaos 1 #1', kind: 'in-app', keyed, expectedRows: 1, tries };
}

function auditOne(r: LoadRequest, stored: StoredForMarker | undefined, faults: AppliedFault[] = []): Findings {
  const findings = new Findings();
  auditRequests([r], new Map(stored ? [[r.marker, stored]] : []), faults, instances, findings);
  return findings;
}

const oneRow: StoredForMarker = { rows: [{ id: 'n1', status: 'SENT', fanoutId: null }], fanouts: [] };
const postgresCut = (from: number, to: number): AppliedFault => ({ kind: 'postgres-cut', target: 'api-1', slots: ['api-1'], startedAt: from, endedAt: to });

describe('the chaos audit of requests', () => {
  it('counts a 201 whose row is missing as lost, and one whose row is there as nothing', () => {
    expect(auditOne(request([answered(201, T0, { ids: ['n1'] })]), undefined).failures()).toEqual(['lost']);
    expect(auditOne(request([answered(201, T0, { ids: ['n1'] })]), oneRow).failures()).toEqual([]);
  });

  it('fails a 503 whose row is stored, unless a PostgreSQL cut of that API was on (the in-doubt commit)', () => {
    const refused = request([answered(503, T0, { code: 'unavailable' })]);
    expect(auditOne(refused, oneRow).failures()).toEqual(['storedBehindRefusal']);
    const during = auditOne(refused, oneRow, [postgresCut(T0 - 500, T0 + 50)]);
    expect(during.failures()).toEqual([]);
    expect(during.count('inDoubtCommit')).toBe(1);
    // A cut that was over before the request was sent explains nothing.
    expect(auditOne(refused, oneRow, [postgresCut(T0 - 3000, T0 - 2000)]).failures()).toEqual(['storedBehindRefusal']);
  });

  it('holds an idempotent repeat (200) to the same rule: the refused try before it stored the row', () => {
    const repeat = request([answered(503, T0, { code: 'unavailable' }), answered(200, T0 + 1000, { ids: ['n1'] })], true);
    expect(auditOne(repeat, oneRow).failures()).toEqual(['storedBehindRefusal']);
    expect(auditOne(repeat, oneRow, [postgresCut(T0, T0 + 1)]).failures()).toEqual([]);
  });

  it('fails a 500, a 400, a second row, and no answer from an API no fault hit', () => {
    expect(auditOne(request([answered(500, T0)]), undefined).failures()).toEqual(['serverError']);
    expect(auditOne(request([answered(400, T0)]), undefined).failures()).toEqual(['unexpectedRefusal']);
    const twice: StoredForMarker = { rows: [...oneRow.rows, { id: 'n2', status: 'SENT', fanoutId: null }], fanouts: [] };
    expect(auditOne(request([answered(201, T0, { ids: ['n1'] })]), twice).failures()).toEqual(['duplicateRows']);
    const silent = request([answered(undefined, T0, { error: 'ECONNRESET' })]);
    expect(auditOne(silent, undefined).failures()).toEqual(['liveApiNoAnswer']);
    const stopped: AppliedFault = { kind: 'SIGSTOP', target: 'api-1', slots: ['api-1'], startedAt: T0 - 100, endedAt: T0 + 3000 };
    expect(auditOne(silent, oneRow, [stopped]).count('noAnswerFromFaultedApi')).toBe(1);
    expect(auditOne(silent, oneRow, [stopped]).failures()).toEqual([]);
  });
});

describe('the chaos audit of deliveries', () => {
  const twice = new Map<string, Delivery[]>([
    [
      'n1',
      [
        { at: T0, answer: 'ok', acceptedAt: T0 },
        { at: T0 + 5000, answer: 'ok', acceptedAt: T0 + 5000 },
      ],
    ],
  ]);
  const attempts = (outcome: string) =>
    new Map<string, AttemptRow[]>([
      [
        'n1',
        [
          { notification_id: 'n1', attempt: 1, worker_id: 'w1', started_at: new Date(T0 - 50), finished_at: new Date(T0 + 4000), outcome, error: null },
          { notification_id: 'n1', attempt: 2, worker_id: 'w2', started_at: new Date(T0 + 4900), finished_at: new Date(T0 + 5100), outcome: 'SENT', error: null },
        ],
      ],
    ]);

  function auditTwice(outcome: string, faults: AppliedFault[]): Findings {
    const findings = new Findings();
    auditDeliveries(twice, attempts(outcome), faults, instances, 4000, findings);
    return findings;
  }

  it('fails a repeat after a lease expired with no fault on the worker that delivered first', () => {
    expect(auditTwice('LEASE_EXPIRED', []).failures()).toEqual(['unexplainedDuplicate']);
  });

  it('explains a repeat by a kill of that worker within a lease of the first delivery, not by one of another worker', () => {
    const kill = (workerId: string): AppliedFault => ({ kind: 'SIGKILL', target: 'worker-1', slots: ['worker-1'], startedAt: T0 + 200, endedAt: T0 + 200, workerId });
    expect(auditTwice('LEASE_EXPIRED', [kill('w1')]).count('explainedDuplicate')).toBe(1);
    expect(auditTwice('LEASE_EXPIRED', [kill('w9')]).failures()).toEqual(['unexplainedDuplicate']);
  });

  it('explains a repeat by the crash of that worker within a lease of the first delivery', () => {
    const crashed = [{ ...instances[1], endedAt: T0 + 1000 }, instances[0]] as Instance[];
    const findings = new Findings();
    auditDeliveries(twice, attempts('LEASE_EXPIRED'), [], crashed, 4000, findings);
    expect(findings.count('explainedDuplicate')).toBe(1);
  });

  it('counts a repeat after the worker recorded its attempt failed as allowed', () => {
    expect(auditTwice('RETRY', []).count('timedOutDuplicate')).toBe(1);
  });
});
