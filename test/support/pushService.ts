import { createECDH, createPublicKey, randomBytes, verify, type ECDH } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { closeNow } from './testHttpServer.ts';

/** The part of http_ece (untyped) this service uses: RFC 8188 decryption with a Web Push key pair. */
interface Ece {
  decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: Buffer }): Buffer;
}
const ece = createRequire(import.meta.url)('http_ece') as Ece;

/** Push services refuse bodies above this (RFC 8030 §7.2). */
const MAX_BODY_BYTES = 4096;
/** A VAPID JWT may not be valid for longer than this (RFC 8292 §2). */
const MAX_JWT_LIFETIME_SECONDS = 24 * 60 * 60;

/** A subscription as a browser's `PushSubscription.toJSON()` gives it. */
export interface SubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
}

/** A push message the service accepted: the request checked, the JWT verified, the body decrypted. */
export interface ReceivedPush {
  endpoint: string;
  headers: http.IncomingHttpHeaders;
  /** The decrypted payload. */
  text: string;
  claims: VapidClaims;
  /** The VAPID public key the message was signed with (`k=`). */
  vapidKey: string;
  at: number;
}

/** Any request to an endpoint, whatever the answer. */
export interface PushRequest {
  endpoint: string;
  headers: http.IncomingHttpHeaders;
  at: number;
  /** The answer given, unset while the request hangs. */
  status?: number;
  /** Why the service refused it, when it refused it for breaking a rule. */
  refusal?: string;
  /** When the sender closed the connection before it had an answer. */
  abandonedAt?: number;
}

/** An answer the test programs instead of the usual one. */
export interface ProgrammedAnswer {
  status: number;
  retryAfter?: string;
  body?: string;
  /** The body starts with the request's Authorization header (its VAPID token), as a careless service might echo it. */
  echoAuthorization?: boolean;
}

interface Subscriber {
  ecdh: ECDH;
  authSecret: Buffer;
  /** The VAPID key the subscription is restricted to (RFC 8292 §3.2), if any. */
  applicationServerKey?: string;
  expiredWith?: 404 | 410;
  silent: boolean;
  next: ProgrammedAnswer[];
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A Web Push service on 127.0.0.1 that checks what it receives as a real one would: RFC 8030 headers,
 * the RFC 8292 VAPID JWT (signature, audience, expiry, subject) and, standing in for the browser, the
 * RFC 8291 aes128gcm encryption, which it decrypts with the subscription's keys.
 */
export class PushService {
  readonly requests: PushRequest[] = [];
  private readonly accepted: ReceivedPush[] = [];
  private readonly subscribers = new Map<string, Subscriber>();
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<PushService> {
    let service: PushService | undefined;
    const server = http.createServer((req, res) => service!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    service = new PushService(server);
    return service;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /**
   * A new subscription, made as a browser makes one: a P-256 key pair and a 16-byte auth secret of
   * its own. With `applicationServerKey`, only messages signed with that VAPID key are accepted.
   */
  subscribe(options: { applicationServerKey?: string } = {}): SubscriptionJson {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const authSecret = randomBytes(16);
    const endpoint = `${this.origin}/push/${randomBytes(16).toString('base64url')}`;
    this.subscribers.set(endpoint, { ecdh, authSecret, applicationServerKey: options.applicationServerKey, silent: false, next: [] });
    return {
      endpoint,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url') },
    };
  }

  /** The subscription is gone: every request to it is answered `status` from now on. */
  expire(endpoint: string, status: 404 | 410 = 410): void {
    this.subscriber(endpoint).expiredWith = status;
  }

  /** The next request to the endpoint gets this answer instead (one per call, in order). */
  failNext(endpoint: string, answer: ProgrammedAnswer): void {
    this.subscriber(endpoint).next.push(answer);
  }

  /** Requests to the endpoint get no answer at all from now on. */
  silence(endpoint: string): void {
    this.subscriber(endpoint).silent = true;
  }

  /** Messages accepted for one endpoint, or for all. */
  received(endpoint?: string): ReceivedPush[] {
    return endpoint === undefined ? [...this.accepted] : this.accepted.filter((m) => m.endpoint === endpoint);
  }

  requestsTo(endpoint: string): PushRequest[] {
    return this.requests.filter((r) => r.endpoint === endpoint);
  }

  async close(): Promise<void> {
    await closeNow(this.server, this.hanging);
  }

  private subscriber(endpoint: string): Subscriber {
    const subscriber = this.subscribers.get(endpoint);
    if (!subscriber) throw new Error(`no subscription ${endpoint}`);
    return subscriber;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const endpoint = `${this.origin}${req.url ?? ''}`;
      const request: PushRequest = { endpoint, headers: req.headers, at: Date.now() };
      this.requests.push(request);
      res.on('close', () => {
        this.hanging.delete(res);
        if (!res.writableEnded) request.abandonedAt = Date.now();
      });
      const answer = (status: number, headers: Record<string, string> = {}, body = '') => {
        request.status = status;
        res.writeHead(status, headers).end(body);
      };

      const subscriber = this.subscribers.get(endpoint);
      if (req.method !== 'POST') return answer(405);
      if (!subscriber) return answer(404);
      if (subscriber.silent) {
        this.hanging.add(res);
        return;
      }
      if (subscriber.expiredWith) return answer(subscriber.expiredWith);
      const programmed = subscriber.next.shift();
      if (programmed) {
        const echo = programmed.echoAuthorization ? `you sent ${req.headers.authorization ?? 'nothing'}; ` : '';
        return answer(programmed.status, programmed.retryAfter ? { 'retry-after': programmed.retryAfter } : {}, echo + (programmed.body ?? ''));
      }
      try {
        const message = this.accept(endpoint, subscriber, req.headers, Buffer.concat(chunks));
        this.accepted.push(message);
        answer(201, { location: `${this.origin}/message/${randomBytes(8).toString('hex')}` });
      } catch (err) {
        // Anything malformed that the checks did not name (a JWT part that is not JSON) is a bad request too.
        const refusal = err instanceof Refusal ? err : new Refusal(400, `malformed request: ${(err as Error).message}`);
        request.refusal = refusal.message;
        answer(refusal.status, { 'content-type': 'text/plain' }, refusal.message);
      }
    });
  }

  /** Checks a push message as RFC 8030, 8291 and 8292 ask, and decrypts it; throws a Refusal otherwise. */
  private accept(endpoint: string, subscriber: Subscriber, headers: http.IncomingHttpHeaders, body: Buffer): ReceivedPush {
    if (headers.ttl === undefined || !/^\d+$/.test(headers.ttl as string)) throw new Refusal(400, 'TTL header missing or malformed');
    if (body.length > MAX_BODY_BYTES) throw new Refusal(413, `body of ${body.length} bytes exceeds ${MAX_BODY_BYTES}`);
    if (headers['content-encoding'] !== 'aes128gcm') throw new Refusal(400, `unsupported Content-Encoding ${headers['content-encoding']}`);

    const { claims, vapidKey } = verifyVapid(headers.authorization, new URL(endpoint).origin);
    if (subscriber.applicationServerKey !== undefined && vapidKey !== subscriber.applicationServerKey) {
      throw new Refusal(403, 'VAPID key does not match the subscription\'s applicationServerKey');
    }

    let text: string;
    try {
      text = ece.decrypt(body, { version: 'aes128gcm', privateKey: subscriber.ecdh, authSecret: subscriber.authSecret }).toString('utf8');
    } catch (err) {
      throw new Refusal(400, `cannot decrypt: ${(err as Error).message}`);
    }
    return { endpoint, headers, text, claims, vapidKey, at: Date.now() };
  }
}

/**
 * Verifies `Authorization: vapid t=<JWT>, k=<public key>` (RFC 8292 §3): an ES256 JWT signed by the
 * key in `k`, for this push service's origin, not yet expired and not valid for more than a day,
 * naming a mailto: or https: contact.
 */
function verifyVapid(authorization: string | undefined, origin: string): { claims: VapidClaims; vapidKey: string } {
  const match = /^vapid\s+(.*)$/i.exec(authorization ?? '');
  if (!match) throw new Refusal(401, 'no vapid Authorization');
  const params = new Map(
    match[1]!.split(',').map((part) => {
      const [name, ...value] = part.trim().split('=');
      return [name!.toLowerCase(), value.join('=')] as const;
    }),
  );
  const jwt = params.get('t');
  const vapidKey = params.get('k');
  if (!jwt || !vapidKey) throw new Refusal(401, 'vapid Authorization needs t and k');

  const point = Buffer.from(vapidKey, 'base64url');
  if (point.length !== 65 || point[0] !== 0x04) throw new Refusal(403, 'k is not an uncompressed P-256 point');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });

  const [header, payload, signature] = jwt.split('.');
  if (!header || !payload || !signature) throw new Refusal(403, 'malformed JWT');
  const alg = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: string }).alg;
  if (alg !== 'ES256') throw new Refusal(403, `JWT alg ${alg}, not ES256`);
  const valid = verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!valid) throw new Refusal(403, 'JWT signature does not verify with k');

  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as VapidClaims;
  const now = Math.floor(Date.now() / 1000);
  if (claims.aud !== origin) throw new Refusal(403, `JWT aud ${claims.aud}, not ${origin}`);
  if (!Number.isInteger(claims.exp) || claims.exp <= now) throw new Refusal(403, 'JWT expired');
  if (claims.exp > now + MAX_JWT_LIFETIME_SECONDS) throw new Refusal(403, 'JWT valid for more than 24 hours');
  if (!/^(mailto:|https:)/.test(claims.sub ?? '')) throw new Refusal(403, `JWT sub ${claims.sub} is not a mailto: or https: URL`);
  return { claims, vapidKey };
}
