import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch } from 'undici';
import { Random } from '../support/fuzzRandom.ts';
import type { SlotName } from './faultSchedule.ts';
import type { Supervisor } from './supervisor.ts';

/** Users the load writes to; their profiles and the topic are set up before the load starts. */
export const USERS = ['chaos-u1', 'chaos-u2', 'chaos-u3', 'chaos-u4', 'chaos-u5'] as const;
/** Opted out of IN_APP and WEBHOOK: what is sent to this user ends SKIPPED. */
export const OPTED_OUT_USER = 'chaos-optout';
export const TOPIC = 'chaos-topic';

/** How long a client waits for an answer: a SIGSTOPped API holds requests for up to 6 s, and a busy machine slows every answer. */
const CLIENT_TIMEOUT_MS = 30_000;
/** A client with an Idempotency-Key sends again after a 503, a 409 or no answer, this many times in all. */
const KEYED_TRIES = 4;
const KEYED_RETRY_PAUSE_MS = 500;
/**
 * The client's connections: an idle one is closed after 1 s, well before the API's own 5 s
 * keep-alive timeout, so a client that stalls for a few seconds on a busy machine does not send on
 * a connection the API has just closed (which fails as "other side closed", the API's fault in
 * appearance only).
 */
const client = new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 });
/** Requests waiting for their answer at most; beyond, the load waits (and says so in the report). */
const MAX_IN_FLIGHT = 1000;

export type RequestKind = 'in-app' | 'webhook' | 'user-ids' | 'topic';

/** One try of a request: where it went and what came back (a status, or the client's error). */
export interface Try {
  slot: SlotName | undefined;
  url: string | undefined;
  sentAt: number;
  answeredAt: number;
  status?: number;
  code?: string;
  error?: string;
  /** Ids the answer named: the notification(s) created or found, and the fan-out. */
  ids: string[];
  fanoutId?: string;
}

/** A request of the load: its marker (in its body, so its rows can be found), and every try. */
export interface LoadRequest {
  n: number;
  marker: string;
  kind: RequestKind;
  keyed: boolean;
  /** Rows one accepted request stores (the topic's are created later, by a worker). */
  expectedRows: number;
  tries: Try[];
}

/**
 * Steady load on the run's APIs: `rate` POST /notifications a second, spread evenly, each
 * request's shape drawn from the seed (IN_APP, WEBHOOK to the flaky receiver, a `user_ids` list, a
 * topic; some with an Idempotency-Key, some to an opted-out user). Every answer is recorded.
 * Requests go to an API a load balancer would pick: one that is up, by the seed.
 */
export class LoadGenerator {
  readonly requests: LoadRequest[] = [];
  inFlight = 0;
  /** Times the load had to wait because MAX_IN_FLIGHT requests were unanswered. */
  throttled = 0;
  /** Draws the requests' shapes: only `next()` uses it, so the mix does not depend on timing. */
  private readonly random: Random;
  /** Picks the API of each try. */
  private readonly routing: Random;
  private readonly settled = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly receiverUrl: string,
    private readonly seed: number,
    private readonly rate: number,
  ) {
    this.random = new Random(seed ^ 0x10ad);
    this.routing = new Random(seed ^ 0x2047e);
  }

  /** Sends until `stop()`; resolves when it stops sending (answers may still be coming). */
  async run(): Promise<void> {
    const started = Date.now();
    let sent = 0;
    while (!this.stopped) {
      const due = Math.floor(((Date.now() - started) / 1000) * this.rate);
      while (sent < due && !this.stopped) {
        if (this.inFlight >= MAX_IN_FLIGHT) {
          this.throttled++;
          break;
        }
        this.launch(this.next(sent++));
      }
      await sleep(10);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** Waits for every request's last try (keyed ones may still be retrying). */
  async settle(): Promise<void> {
    while (this.settled.size > 0) await Promise.all([...this.settled]);
  }

  /** Answers so far by status (`no answer` for a client error), over every try. */
  answerCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.requests) {
      for (const t of r.tries) {
        const key = t.status === undefined ? 'no answer' : String(t.status);
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }
    return counts;
  }

  private next(n: number): { request: LoadRequest; body: string } {
    const marker = `chaos ${this.seed} #${n}`;
    const r = this.random;
    const user = r.chance(0.05) ? OPTED_OUT_USER : r.pick(USERS);
    const [kind, payload, expectedRows] = r.weighted<[RequestKind, Record<string, unknown>, number]>([
      [45, () => ['in-app', { user_id: user, type: 'IN_APP' }, 1]],
      [40, () => ['webhook', { user_id: user, type: 'WEBHOOK', to: this.receiverUrl }, 1]],
      [10, () => ['user-ids', { user_ids: [...USERS.slice(0, 3)], type: 'IN_APP' }, 3]],
      [5, () => ['topic', { topic: TOPIC, type: 'WEBHOOK' }, USERS.length]],
    ]);
    const keyed = (kind === 'in-app' || kind === 'webhook') && r.chance(0.3);
    const request: LoadRequest = { n, marker, kind, keyed, expectedRows, tries: [] };
    this.requests.push(request);
    return { request, body: JSON.stringify({ ...payload, title: `load ${n}`, body: marker, data: { marker } }) };
  }

  private launch({ request, body }: { request: LoadRequest; body: string }): void {
    this.inFlight++;
    const work = this.send(request, body).finally(() => {
      this.inFlight--;
      this.settled.delete(work);
    });
    this.settled.add(work);
  }

  private async send(request: LoadRequest, body: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (request.keyed) headers['idempotency-key'] = `chaos-${this.seed}-${request.n}`;
    for (let attempt = 1; ; attempt++) {
      const t = await this.post(body, headers);
      request.tries.push(t);
      const again = t.status === undefined || t.status === 503 || t.status === 409;
      if (!request.keyed || !again || attempt >= KEYED_TRIES) return;
      await sleep(KEYED_RETRY_PAUSE_MS * attempt);
    }
  }

  private async post(body: string, headers: Record<string, string>): Promise<Try> {
    const apis = this.supervisor.reachableApis();
    // With no API up, the client still tries one (and gets no answer), as behind a load balancer.
    const target = apis.length > 0 ? this.routing.pick(apis) : this.anyApi();
    const t: Try = { slot: target?.slot, url: target?.url, sentAt: Date.now(), answeredAt: 0, ids: [] };
    if (!target) {
      t.answeredAt = t.sentAt;
      t.error = 'no API running';
      return t;
    }
    try {
      const res = await fetch(`${target.url}/notifications`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
        dispatcher: client,
      });
      const text = await res.text();
      t.status = res.status;
      readAnswer(t, text);
    } catch (err) {
      t.error = describe(err);
    }
    t.answeredAt = Date.now();
    return t;
  }

  private anyApi(): { slot: SlotName; url: string } | undefined {
    for (const slot of this.supervisor.slots.values()) {
      const url = slot.current?.url;
      if (slot.kind === 'api' && url) return { slot: slot.name, url };
    }
    return undefined;
  }
}

/** Takes the ids (or the error code) out of an answer's JSON; a body that is not JSON is kept as the code. */
function readAnswer(t: Try, text: string): void {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    t.code = `not JSON: ${text.slice(0, 80)}`;
    return;
  }
  const error = json.error as { code?: string } | undefined;
  if (error) t.code = String(error.code);
  if (typeof json.id === 'string') t.ids.push(json.id);
  if (typeof json.fanout_id === 'string') t.fanoutId = json.fanout_id;
  if (Array.isArray(json.notifications)) for (const n of json.notifications as { id: string }[]) t.ids.push(n.id);
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${CLIENT_TIMEOUT_MS / 1000} s`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
