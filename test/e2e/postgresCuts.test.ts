import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Sql } from '../../internal/platform/database.ts';
import type { TcpProxy } from '../support/tcpProxy.ts';
import { isRunning, useTestScope, type RunningServices } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

/** Requests the test keeps in flight at once, each poster sending its next as soon as one is answered. */
const POSTERS = 8;
/** How many times PostgreSQL is cut off from both processes. */
const CUTS = 30;
/**
 * How long PostgreSQL stays reachable between cuts, in turn. The short one cuts the connections the
 * pools have just opened, while they still run postgres.js' first query (its array types); the
 * long one lets a load of requests and claims build up on open connections before the next cut.
 */
const UP_MS = [40, 500];
/** How long each cut lasts: long enough for every connection to notice, short enough for many cuts. */
const DOWN_MS = 120;
/** After the last cut, the time a notification accepted during the cuts may take to be delivered. */
const DELIVERY_TIMEOUT_MS = 40_000;

/** What the API answered to each POST during the cuts, or how the request failed without an answer. */
interface Answers {
  created: string[];
  unavailable: number;
  /** Anything else: another status (with its body), or a failure to get an answer at all. */
  other: string[];
}

async function post(apiUrl: string, to: string, userId: string): Promise<Response> {
  return fetch(`${apiUrl}/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, type: 'WEBHOOK', body: `for ${userId}`, to }),
  });
}

/** Keeps `POSTERS` POSTs in flight until `stop` resolves, and tallies what came back. */
async function postUntil(stop: Promise<void>, apiUrl: string, to: string): Promise<Answers> {
  const answers: Answers = { created: [], unavailable: 0, other: [] };
  let stopped = false;
  void stop.then(() => (stopped = true));
  const poster = async (n: number) => {
    for (let i = 0; !stopped; i++) {
      try {
        const res = await post(apiUrl, to, `cut-load-${n}-${i}`);
        const text = await res.text();
        if (res.status === 201) answers.created.push((JSON.parse(text) as { id: string }).id);
        else if (res.status === 503) answers.unavailable++;
        else answers.other.push(`${res.status} ${text.slice(0, 200)}`);
      } catch (err) {
        // No answer at all: the API process died, or dropped the connection.
        answers.other.push(`no answer: ${String((err as Error).cause ?? err)}`);
        await sleep(50);
      }
    }
  };
  await Promise.all(Array.from({ length: POSTERS }, (_, n) => poster(n)));
  return answers;
}

/** Cuts PostgreSQL off `CUTS` times, with the up and down times above, and leaves it restored. */
async function cutRepeatedly(pg: TcpProxy): Promise<void> {
  for (let i = 0; i < CUTS; i++) {
    await sleep(UP_MS[i % UP_MS.length]!);
    pg.cut();
    await sleep(DOWN_MS);
    pg.restore();
  }
}

async function sentCount(sql: Sql, ids: string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from notifications where id = any(${ids}::uuid[]) and status = 'SENT'`;
  return row!.n;
}

/** What each process printed besides its JSON log lines: how a process that died went. */
function crashOutput(services: RunningServices): string {
  return [services.api, services.worker]
    .map(({ process: p }) => `${p.name}:\n${p.output.filter((line) => !line.startsWith('{')).slice(-15).join('\n')}`)
    .join('\n');
}

/**
 * The fault run that found three faults of postgres.js (patches/, README "Patched dependencies"),
 * shrunk: with the processes' PostgreSQL behind a proxy, POSTs in flight all along and the worker
 * claiming them, the proxy drops every connection many times. Unpatched, the API died of a write to
 * a closed socket thrown from a setImmediate, and the worker (the API too) of an unhandled rejection
 * of the array-types query a new connection runs first, cut off before its answer.
 */
describe('PostgreSQL cut off again and again under write load', () => {
  const scope = useTestScope();

  it('leaves the API and the worker running, answering 201 or 503, and delivers everything accepted once it is back', async () => {
    const db = await scope.database();
    const pg = await scope.proxy(db.url);
    const receiver = await scope.receiver();
    const viaProxy = { DATABASE_URL: pg.urlFor(db.url) };
    const services = await scope.services({ db, apiEnv: viaProxy, workerEnv: viaProxy });
    const { api, worker } = services;
    await waitFor('the API to be ready', async () => (await fetch(`${api.url}/readyz`)).status === 200);

    const cutting = cutRepeatedly(pg);
    const answers = await postUntil(cutting, api.url, receiver.url);

    expect(isRunning(api.process), crashOutput(services)).toBe(true);
    expect(isRunning(worker.process), crashOutput(services)).toBe(true);
    expect(answers.other).toEqual([]);
    // The cuts did land on requests and on claims under way, not only between them.
    expect(answers.unavailable).toBeGreaterThan(0);
    expect(answers.created.length).toBeGreaterThan(0);
    expect(worker.process.logs.some((l) => l.msg === 'claim failed; the notifications go back on the queue')).toBe(true);

    await waitFor('the API to be ready again', async () => (await fetch(`${api.url}/readyz`)).status === 200);
    const after = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const res = await post(api.url, receiver.url, `after-cuts-${i}`);
        expect(res.status).toBe(201);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    const accepted = [...answers.created, ...after];
    await waitFor('every accepted notification to be SENT', async () => (await sentCount(db.sql, accepted)) === accepted.length, DELIVERY_TIMEOUT_MS);
    for (const id of after) expect(receiver.forId(id).length).toBeGreaterThanOrEqual(1);
    expect(isRunning(api.process) && isRunning(worker.process), crashOutput(services)).toBe(true);
  });
});
