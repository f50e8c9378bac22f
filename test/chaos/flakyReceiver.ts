import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Random } from '../support/fuzzRandom.ts';
import { closeNow, listenLocally, onBody } from '../support/testHttpServer.ts';

/** What the receiver did with one delivery. */
export type ReceiverAnswer = 'ok' | 'slow-ok' | 'error' | 'reset' | 'gone';

/** One request the receiver got for a notification (its `webhook-id`). */
export interface Delivery {
  at: number;
  answer: ReceiverAnswer;
  /** When a 2xx answer was written out whole: the notification was delivered to this receiver. */
  acceptedAt?: number;
}

/** How often each answer comes, out of 100; `gone` (410) fails the notification for good. */
const ANSWER_WEIGHTS: readonly (readonly [number, ReceiverAnswer])[] = [
  [78, 'ok'],
  [6, 'slow-ok'],
  [9, 'error'],
  [5, 'reset'],
  [2, 'gone'],
];
/** A slow answer stays well inside WEBHOOK_TIMEOUT_MS: slow, not timed out. */
const SLOW_MS = [100, 500] as const;

/**
 * A webhook receiver that fails a fraction of deliveries (a 503, a slow 200, a connection reset, a
 * 410), decided by the seed and the notification's marker and user and how many times it came, so
 * the same seed answers the same way whichever worker delivers when. It records every delivery by
 * notification id, and which ones it accepted.
 */
export class FlakyReceiver {
  readonly deliveries = new Map<string, Delivery[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server!: http.Server;

  private constructor(private readonly seed: number) {}

  /** A receiver listening on a free port of 127.0.0.1. */
  static async start(seed: number): Promise<FlakyReceiver> {
    const receiver = new FlakyReceiver(seed);
    receiver.server = await listenLocally((req, res) => receiver.handle(req, res));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Deliveries the receiver answered with a 2xx, over every notification. */
  acceptedCount(): number {
    let n = 0;
    for (const list of this.deliveries.values()) n += list.filter((d) => d.acceptedAt !== undefined).length;
    return n;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await closeNow(this.server);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    onBody(req, (body) => {
      const id = String(req.headers['webhook-id'] ?? '');
      let json: { body?: string; user_id?: string } = {};
      try {
        json = JSON.parse(body) as typeof json;
      } catch {
        // answered like any other; the audit finds it by its id
      }
      const list = this.deliveries.get(id) ?? [];
      this.deliveries.set(id, list);
      const random = new Random(hash(`${this.seed}|${json.body}|${json.user_id}|${list.length}`));
      const delivery: Delivery = { at: Date.now(), answer: random.weighted(ANSWER_WEIGHTS.map(([w, a]) => [w, () => a] as const)) };
      list.push(delivery);
      this.answer(res, delivery, random);
    });
  }

  private answer(res: http.ServerResponse, delivery: Delivery, random: Random): void {
    const accept = () => {
      if (res.destroyed) return;
      res.once('finish', () => (delivery.acceptedAt = Date.now()));
      res.writeHead(200).end();
    };
    switch (delivery.answer) {
      case 'ok':
        return accept();
      case 'slow-ok': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          accept();
        }, random.int(...SLOW_MS));
        this.timers.add(timer);
        return;
      }
      case 'error':
        res.writeHead(503).end();
        return;
      case 'reset':
        res.socket?.destroy();
        return;
      case 'gone':
        res.writeHead(410).end();
    }
  }
}

/** FNV-1a: a 32-bit seed from a string. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
