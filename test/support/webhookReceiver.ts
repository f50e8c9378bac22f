import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  at: number;
}

/** What the receiver does with the n-th request (0-based): answer with a status, or never answer. */
export type Responder = (request: ReceivedWebhook, n: number) => number | 'hang';

/** A real HTTP server that records the webhooks it receives and answers as the test tells it. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(
    private readonly server: http.Server,
    public respond: Responder,
  ) {}

  static async start(respond: Responder = () => 200): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = http.createServer((req, res) => receiver!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new WebhookReceiver(server, respond);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Requests received for one notification id (`webhook-id`). */
  forId(id: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.headers['webhook-id'] === id);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as received; the test decides whether that is wrong
      }
      const request = { headers: req.headers, body, json, at: Date.now() };
      const n = this.received.push(request) - 1;
      const answer = this.respond(request, n);
      if (answer === 'hang') {
        this.hanging.add(res);
        return;
      }
      res.writeHead(answer).end();
    });
  }
}
