import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeNow, listenLocally, onBody, watchAbandon } from './testHttpServer.ts';

/** One request as it arrived, whatever the answer was. */
export interface TwilioRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The urlencoded form's fields (empty for another content type). */
  form: Record<string, string>;
  body: string;
  at: number;
  /** When the client closed the connection before it had an answer (it gave up). */
  abandonedAt?: number;
}

/** A Message resource as Twilio answers it on creation (the fields a sender might read). */
export interface TwilioMessage {
  sid: string;
  account_sid: string;
  api_version: '2010-04-01';
  to: string;
  from: string | null;
  messaging_service_sid: string | null;
  body: string;
  status: 'queued' | 'accepted';
  direction: 'outbound-api';
  num_media: string;
  error_code: null;
  error_message: null;
  price: null;
  price_unit: 'USD';
  date_created: string;
  date_updated: string;
  date_sent: null;
  uri: string;
  subresource_uris: { media: string };
}

/** A programmed failure: Twilio's error JSON with `code` and `message`, or `raw` text as a proxy would send. */
export interface TwilioFailure {
  status: number;
  code?: number;
  message?: string;
  /** The Retry-After header's value. */
  retryAfter?: string;
  /** The Location header's value, for a redirect. */
  location?: string;
  /** Sent as the body instead of Twilio's JSON. */
  raw?: string;
}

const DEFAULT_FAILURES: Record<number, { code: number; message: string }> = {
  400: { code: 21211, message: "The 'To' number is not a valid phone number." },
  401: { code: 20003, message: 'Authenticate' },
  403: { code: 20003, message: 'Permission Denied' },
  404: { code: 20404, message: 'The requested resource was not found' },
  429: { code: 20429, message: 'Too Many Requests' },
  500: { code: 20500, message: 'Internal Server Error' },
  503: { code: 20503, message: 'Service Unavailable' },
};

const MESSAGES_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const E164 = /^\+[1-9]\d{6,14}$/;

/**
 * A local server speaking Twilio's Messages API: Basic auth against one account, the create call's
 * validation errors, and a 201 Message resource for what it accepts. Tests program the next answers
 * (a failure, or no answer at all) to see how a sender classifies them.
 */
export class TwilioServer {
  /** Messages accepted (answered 201), in order. */
  readonly messages: TwilioMessage[] = [];
  /** Every request, accepted or not. */
  readonly requests: TwilioRequest[] = [];
  private readonly programmed: (TwilioFailure | 'hang' | { hang: number })[] = [];
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(
    private readonly server: http.Server,
    readonly accountSid: string,
    readonly authToken: string,
    private readonly echoAuthorization: boolean,
  ) {}

  /**
   * `echoAuthorization`: every error answer repeats the request's Authorization header, as a
   * careless provider or proxy might.
   */
  static async start(options: { accountSid?: string; authToken?: string; echoAuthorization?: boolean } = {}): Promise<TwilioServer> {
    const accountSid = options.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
    const authToken = options.authToken ?? randomBytes(16).toString('hex');
    let twilio: TwilioServer | undefined;
    const server = await listenLocally((req, res) => twilio!.handle(req, res));
    twilio = new TwilioServer(server, accountSid, authToken, options.echoAuthorization ?? false);
    return twilio;
  }

  /** The base URL, as SMS_PROVIDER_URL would give it. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next request not yet answered by a programmed answer gets this failure, whatever it holds. */
  failNext(failure: TwilioFailure): void {
    this.programmed.push(failure);
  }

  /**
   * The next request not yet answered by a programmed answer gets no answer until the server
   * closes; with `partial`, it gets that status, its headers and the start of a body, then nothing.
   */
  hangNext(partial?: { status: number }): void {
    this.programmed.push(partial ? { hang: partial.status } : 'hang');
  }

  async close(): Promise<void> {
    await closeNow(this.server, this.hanging);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    onBody(req, (body) => {
      const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      const request: TwilioRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        form: isForm ? Object.fromEntries(new URLSearchParams(body)) : {},
        body,
        at: Date.now(),
      };
      this.requests.push(request);
      watchAbandon(res, request, this.hanging);
      this.answer(request, res);
    });
  }

  private answer(request: TwilioRequest, res: http.ServerResponse): void {
    const next = this.programmed.shift();
    if (next === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (next && 'hang' in next) {
      this.hanging.add(res);
      res.writeHead(next.hang, { 'content-type': 'application/json' }).write('{"code":');
      return;
    }
    if (next) return this.fail(res, next, request);

    const match = MESSAGES_PATH.exec(request.path);
    if (request.method !== 'POST' || !match) return this.fail(res, { status: 404 }, request);
    const credentials = basicCredentials(request.headers.authorization);
    if (credentials?.user !== this.accountSid || credentials.password !== this.authToken) return this.fail(res, { status: 401 }, request);
    if (decodeURIComponent(match[1]!) !== this.accountSid) return this.fail(res, { status: 404 }, request);

    const { To: to, From: from, MessagingServiceSid: service, Body: text } = request.form;
    if (!to) return this.fail(res, { status: 400, code: 21604, message: "A 'To' phone number is required." }, request);
    if (!from && !service) return this.fail(res, { status: 400, code: 21603, message: "A 'From' phone number is required." }, request);
    if (!text) return this.fail(res, { status: 400, code: 21602, message: 'Message body is required.' }, request);
    if (!E164.test(to)) return this.fail(res, { status: 400, code: 21211, message: `The 'To' number ${to} is not a valid phone number.` }, request);

    const message = this.accept(to, from ?? null, service ?? null, text);
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(message));
  }

  private accept(to: string, from: string | null, service: string | null, text: string): TwilioMessage {
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const base = `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}`;
    // Twilio writes RFC 2822 dates with a numeric zone.
    const now = new Date().toUTCString().replace('GMT', '+0000');
    const message: TwilioMessage = {
      sid,
      account_sid: this.accountSid,
      api_version: '2010-04-01',
      to,
      from,
      messaging_service_sid: service,
      body: text,
      // A messaging service picks the sender after accepting the message.
      status: service && !from ? 'accepted' : 'queued',
      direction: 'outbound-api',
      num_media: '0',
      error_code: null,
      error_message: null,
      price: null,
      price_unit: 'USD',
      date_created: now,
      date_updated: now,
      date_sent: null,
      uri: `${base}.json`,
      subresource_uris: { media: `${base}/Media.json` },
    };
    this.messages.push(message);
    return message;
  }

  private fail(res: http.ServerResponse, failure: TwilioFailure, request: TwilioRequest): void {
    const headers: Record<string, string> = {};
    if (failure.retryAfter !== undefined) headers['retry-after'] = failure.retryAfter;
    if (failure.location !== undefined) headers.location = failure.location;
    const echo = this.echoAuthorization ? ` (you sent Authorization: ${request.headers.authorization ?? 'nothing'})` : '';
    if (failure.raw !== undefined) {
      res.writeHead(failure.status, { ...headers, 'content-type': 'text/plain' }).end(failure.raw + echo);
      return;
    }
    const fallback = DEFAULT_FAILURES[failure.status] ?? { code: 20001, message: 'Unknown error' };
    const code = failure.code ?? fallback.code;
    const error = {
      code,
      message: (failure.message ?? fallback.message) + echo,
      more_info: `https://www.twilio.com/docs/errors/${code}`,
      status: failure.status,
    };
    res.writeHead(failure.status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(error));
  }
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
