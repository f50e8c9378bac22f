import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeNow, listenLocally, onBody, watchAbandon } from './testHttpServer.ts';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  at: number;
  /** When the sender closed the connection before it had an answer (it gave up, or it died). */
  abandonedAt?: number;
}

/** An answer given only after `delayMs`, as a slow receiver would. */
export interface DelayedAnswer {
  status: number;
  delayMs: number;
}

/**
 * What the receiver does with the n-th request (0-based): answer with a status at once, answer
 * after a delay, or hang (no answer until `answerHanging`, if ever).
 */
export type Responder = (request: ReceivedWebhook, n: number) => number | 'hang' | DelayedAnswer;

/** A real HTTP server that records the webhooks it receives and answers as the test tells it. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly hanging = new Set<http.ServerResponse>();
  private readonly hangingRequests = new WeakMap<http.ServerResponse, ReceivedWebhook>();
  private readonly delayed = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: http.Server,
    public respond: Responder,
  ) {}

  static async start(respond: Responder = () => 200): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = await listenLocally((req, res) => receiver!.handle(req, res));
    receiver = new WebhookReceiver(server, respond);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /**
   * Answers the requests left hanging so far (all, or those `only` picks) with `status`, for a test
   * that decides when a slow receiver finally answers. Returns how many were still open to answer.
   */
  answerHanging(status: number, only: (request: ReceivedWebhook) => boolean = () => true): number {
    let answered = 0;
    for (const res of this.hanging) {
      const request = this.hangingRequests.get(res);
      if (request && !only(request)) continue;
      this.hanging.delete(res);
      if (res.destroyed || res.writableEnded) continue;
      res.writeHead(status).end();
      answered++;
    }
    return answered;
  }

  /** Requests received for one notification id (`webhook-id`). */
  forId(id: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.headers['webhook-id'] === id);
  }

  async close(): Promise<void> {
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    await closeNow(this.server, this.hanging);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    onBody(req, (body) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as received; the test decides whether that is wrong
      }
      const request: ReceivedWebhook = { headers: req.headers, body, json, at: Date.now() };
      watchAbandon(res, request, this.hanging);
      const n = this.received.push(request) - 1;
      const answer = this.respond(request, n);
      if (answer === 'hang') {
        this.hanging.add(res);
        this.hangingRequests.set(res, request);
        return;
      }
      if (typeof answer === 'object') {
        const timer = setTimeout(() => {
          this.delayed.delete(timer);
          if (!res.destroyed && !res.writableEnded) res.writeHead(answer.status).end();
        }, answer.delayMs);
        this.delayed.add(timer);
        return;
      }
      res.writeHead(answer).end();
    });
  }
}

/** How a scenario answers a notification's `hit`-th delivery (1-based). */
export type ScenarioAnswer = (hit: number) => ReturnType<Responder>;

/**
 * A receiver whose answers follow the scenario named in each notification's `data.scenario`, by how
 * many times that notification (its `webhook-id`) has arrived. Notifications without a known
 * scenario get 200. Scenarios can be added or changed while processes are sending.
 */
export async function startScenarioReceiver(): Promise<{ receiver: WebhookReceiver; scenarios: Map<string, ScenarioAnswer> }> {
  const scenarios = new Map<string, ScenarioAnswer>();
  const receiver: WebhookReceiver = await WebhookReceiver.start((request) => {
    const scenario = String((request.json.data as { scenario?: unknown } | null | undefined)?.scenario ?? '');
    const answer = scenarios.get(scenario);
    return answer ? answer(receiver.forId(String(request.headers['webhook-id'])).length) : 200;
  });
  return { receiver, scenarios };
}
