import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, afterEach, assert, beforeAll, describe, expect, it } from 'vitest';
import { PermanentDeliveryError } from '../../internal/channels/permanentDeliveryError.ts';
import { WebhookChannel, type WebhookOptions } from '../../internal/channels/webhookChannel.ts';
import type { LookupAll } from '../../internal/channels/transport/addressPolicy.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import { claimedRow } from '../support/notificationRow.ts';
import { closeNow } from '../support/testHttpServer.ts';
import { deliveryError } from '../support/expectedErrors.ts';

/**
 * These tests answer DNS themselves: a name resolves to whatever the test's resolver says, per call,
 * so a rebinding attacker's resolver can be played without a network. Every address they use is on
 * loopback; where a test needs an address the guard lets through, it says which through `isAllowed`,
 * standing in for a public one.
 */

/** A resolver answering the n-th lookup with `answers[n]` (the last answer repeats); `hang` never answers. */
function fakeResolver(...answers: (string[] | 'hang')[]): { lookup: LookupAll; asked: string[] } {
  const asked: string[] = [];
  const lookup: LookupAll = (hostname, _options, callback) => {
    const answer = answers[Math.min(asked.length, answers.length - 1)]!;
    asked.push(hostname);
    if (answer === 'hang') return;
    const addresses: LookupAddress[] = answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    setImmediate(() => callback(null, addresses));
  };
  return { lookup, asked };
}

/** A server on 127.0.0.1 that counts the TCP connections made to it and records the requests. */
class LocalServer {
  connections = 0;
  readonly requests: { host: string | undefined; localAddress: string | undefined; remoteAddress: string | undefined }[] = [];
  readonly open = new Set<Socket>();

  private constructor(readonly server: http.Server | https.Server) {
    server.on('connection', (socket: Socket) => {
      this.connections++;
      this.open.add(socket);
      socket.on('close', () => this.open.delete(socket));
    });
  }

  static async start(server: http.Server | https.Server = http.createServer()): Promise<LocalServer> {
    const local = new LocalServer(server);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      local.requests.push({ host: req.headers.host, localAddress: req.socket.localAddress, remoteAddress: req.socket.remoteAddress });
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return local;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await closeNow(this.server);
  }
}

function webhookRow(url: string): NotificationRow {
  return claimedRow({ type: 'WEBHOOK', user_id: 'user-ssrf', recipient: url, data: { order: 7 }, locked_by: 'w' });
}

const channels: WebhookChannel[] = [];

/** A channel that checks addresses (as in production) and resolves names with the test's resolver. */
function strictChannel(options: Partial<WebhookOptions>): WebhookChannel {
  const channel = new WebhookChannel({ timeoutMs: 2000, allowPrivate: false, ...options });
  channels.push(channel);
  return channel;
}

afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
});

describe('webhook targets are checked at the address connected to', () => {
  let victim: LocalServer;

  beforeAll(async () => {
    victim = await LocalServer.start();
  });
  afterAll(async () => {
    await victim?.close();
  });

  it('refuses a name resolving to a private address without making any connection', async () => {
    const dns = fakeResolver(['127.0.0.1']);
    const channel = strictChannel({ lookup: dns.lookup });
    const before = victim.connections;

    const err = await deliveryError(channel, webhookRow(`http://private.test:${victim.port}/hook`));

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook target private.test resolves to non-public address 127.0.0.1');
    expect(dns.asked).toEqual(['private.test']);
    expect(victim.connections - before).toBe(0);
  });

  it('refuses a name when any one of its addresses is not public, and connects to none of them', async () => {
    const dns = fakeResolver(['8.8.8.8', '169.254.169.254']);
    const channel = strictChannel({ lookup: dns.lookup });

    const err = await deliveryError(channel, webhookRow('http://metadata.test/latest/meta-data/'));

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook target metadata.test resolves to non-public address 169.254.169.254');
  });

  it('never reaches a local receiver when the name answers a public address first and 127.0.0.1 after (DNS rebinding)', async () => {
    // 127.0.0.2 plays the attacker's public server: allowed, and nothing listens there on this port.
    const dns = fakeResolver(['127.0.0.2'], ['127.0.0.1']);
    const channel = strictChannel({ lookup: dns.lookup, isAllowed: (address) => address === '127.0.0.2' });
    const before = victim.connections;
    const row = webhookRow(`http://rebind.test:${victim.port}/hook`);

    // The one lookup of this attempt is the one checked and the one connected to.
    const first: unknown = await channel.deliver(row, new AbortController().signal).catch((err: unknown) => err);
    expect(victim.connections - before).toBe(0);
    expect(first).toBeInstanceOf(Error);
    assert(first instanceof Error);
    expect(first).not.toBeInstanceOf(PermanentDeliveryError);
    expect(first.message).toBe(`webhook request failed: ECONNREFUSED (connect ECONNREFUSED 127.0.0.2:${victim.port})`);
    expect(dns.asked).toEqual(['rebind.test']);

    // The next attempt connects anew, so it looks up anew: 127.0.0.1 is checked, and refused.
    const second = await deliveryError(channel, row);
    expect(second).toBeInstanceOf(PermanentDeliveryError);
    expect(second.message).toBe('webhook target rebind.test resolves to non-public address 127.0.0.1');
    expect(dns.asked).toEqual(['rebind.test', 'rebind.test']);

    expect(victim.connections - before).toBe(0);
    expect(victim.requests.filter((r) => r.host?.startsWith('rebind.test'))).toEqual([]);
  });

  it('connects to exactly the address the name resolved to, keeping the name as Host', async () => {
    // 127.0.0.1 stands for a public address here; the name itself exists in no real DNS.
    const dns = fakeResolver(['127.0.0.1']);
    const channel = strictChannel({ lookup: dns.lookup, isAllowed: (address) => address === '127.0.0.1' });

    await channel.deliver(webhookRow(`http://public.test:${victim.port}/hook`), new AbortController().signal);

    expect(dns.asked).toEqual(['public.test']);
    expect(victim.requests.filter((r) => r.host === `public.test:${victim.port}`)).toEqual([
      { host: `public.test:${victim.port}`, localAddress: '127.0.0.1', remoteAddress: '127.0.0.1' },
    ]);
  });

  it('reuses its connection between deliveries and closes it in close()', async () => {
    const dns = fakeResolver(['127.0.0.1']);
    const channel = new WebhookChannel({ timeoutMs: 2000, allowPrivate: false, lookup: dns.lookup, isAllowed: () => true });
    const before = victim.connections;

    await channel.deliver(webhookRow(`http://reuse.test:${victim.port}/hook`), new AbortController().signal);
    // fetch resolves on the answer's headers; the connection is free again a moment later.
    await sleep(50);
    await channel.deliver(webhookRow(`http://reuse.test:${victim.port}/hook`), new AbortController().signal);

    expect(victim.connections - before).toBe(1);
    expect(dns.asked).toEqual(['reuse.test']);
    expect(victim.open.size).toBe(1);
    await channel.close();
    await expect.poll(() => victim.open.size, { timeout: 2000 }).toBe(0);
  });

  it('refuses an IP literal without a lookup', async () => {
    const dns = fakeResolver(['8.8.8.8']);
    const channel = strictChannel({ lookup: dns.lookup });
    const before = victim.connections;

    const err = await deliveryError(channel, webhookRow(`http://127.0.0.1:${victim.port}/hook`));

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook target 127.0.0.1 resolves to non-public address 127.0.0.1');
    expect(dns.asked).toEqual([]);
    expect(victim.connections - before).toBe(0);
  });

  // Each IPv6 form that lands on an IPv4 address, as a resolver could answer it.
  it.each(['::7f00:1', '::127.0.0.1', '::ffff:7f00:1', '::ffff:0:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1', '2001:db8::5efe:7f00:1'])(
    'refuses a name resolving to %s without making any connection',
    async (address) => {
      const dns = fakeResolver([address]);
      const channel = strictChannel({ lookup: dns.lookup });
      const before = victim.connections;

      const err = await deliveryError(channel, webhookRow(`http://mapped.test:${victim.port}/hook`));

      expect(err).toBeInstanceOf(PermanentDeliveryError);
      expect(err.message).toBe(`webhook target mapped.test resolves to non-public address ${address}`);
      expect(victim.connections - before).toBe(0);
    },
  );

  it('refuses an IPv4-compatible IPv6 literal stored before it was refused at creation, without a lookup', async () => {
    const dns = fakeResolver(['8.8.8.8']);
    const channel = strictChannel({ lookup: dns.lookup });

    const err = await deliveryError(channel, webhookRow(`http://[::7f00:1]:${victim.port}/hook`));

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook target [::7f00:1] resolves to non-public address ::7f00:1');
    expect(dns.asked).toEqual([]);
  });

  it('counts the lookup within the time limit', async () => {
    const dns = fakeResolver('hang');
    const channel = strictChannel({ lookup: dns.lookup, timeoutMs: 300 });

    const startedAt = Date.now();
    const err = await deliveryError(channel, webhookRow(`http://slow-dns.test:${victim.port}/hook`));

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook request failed: timed out after 300 ms');
    expect(Date.now() - startedAt).toBeLessThan(1500);
    expect(dns.asked).toEqual(['slow-dns.test']);
  });

  it('leaves addresses unchecked, and the resolver unasked, when private targets are allowed', async () => {
    const dns = fakeResolver(['127.0.0.1']);
    const channel = strictChannel({ allowPrivate: true, lookup: dns.lookup });

    await channel.deliver(webhookRow(`http://127.0.0.1:${victim.port}/hook`), new AbortController().signal);

    expect(dns.asked).toEqual([]);
  });
});

/**
 * A self-signed certificate for `secure.test` (P-256, valid until 2126), for a TLS server no client
 * trusts. Made with: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
 * -days 36500 -subj /CN=secure.test -addext subjectAltName=DNS:secure.test
 */
const SELF_SIGNED = {
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWhkSnOLo/CnVC8Sw
nGpB8QpyuJZWCCOcDuUNFVHD73yhRANCAASjs5LPL2LlAtVgdRWhkChvw1Ej31Ep
el5Nu15pIgfqYHIbaDXfOCAFzm5NOuxT+zkKneNwl5Kk/yoVk/nNNOeu
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUTzCrPdaVQiY6jilBjaLDJPsjUDowCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLc2VjdXJlLnRlc3QwIBcNMjYxMTIyMDcyOTEyWhgPMjEyNjEw
MjkwNzI5MTJaMBYxFDASBgNVBAMMC3NlY3VyZS50ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEo7OSzy9i5QLVYHUVoZAob8NRI99RKXpeTbteaSIH6mByG2g1
3zggBc5uTTrsU/s5Cp3jcJeSpP8qFZP5zTTnrqNrMGkwHQYDVR0OBBYEFP0WYpq1
YKqBSSlzlypXGjnGWYV6MB8GA1UdIwQYMBaAFP0WYpq1YKqBSSlzlypXGjnGWYV6
MA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILc2VjdXJlLnRlc3QwCgYIKoZI
zj0EAwIDSAAwRQIgJNLVj7SugdBOpcY0mwuGztuSUvdTGCiKy0QqDNzFQUkCIQDE
cRWNo/bddalgIr8vF9BibrJjeuH9StB8A7XN1eFyPQ==
-----END CERTIFICATE-----
`,
};

describe('https webhook targets', () => {
  let server: LocalServer;
  /** The host names clients asked for in their TLS hello (SNI). */
  const serverNames: string[] = [];

  beforeAll(async () => {
    const context = tls.createSecureContext(SELF_SIGNED);
    const secure = https.createServer({
      ...SELF_SIGNED,
      SNICallback: (name, callback) => {
        serverNames.push(name);
        callback(null, context);
      },
    });
    secure.on('tlsClientError', () => {});
    server = await LocalServer.start(secure);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('still names the host in TLS (SNI) and verifies the certificate when it connects to the resolved address', async () => {
    const dns = fakeResolver(['127.0.0.1']);
    const channel = strictChannel({ lookup: dns.lookup, isAllowed: (address) => address === '127.0.0.1' });

    const err = await deliveryError(channel, webhookRow(`https://secure.test:${server.port}/hook`));

    // The certificate is for secure.test but signed by nobody trusted: the handshake must fail.
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/^webhook request failed: DEPTH_ZERO_SELF_SIGNED_CERT/);
    expect(dns.asked).toEqual(['secure.test']);
    expect(serverNames).toEqual(['secure.test']);
    expect(server.connections).toBe(1);
    expect(server.requests).toEqual([]);
  });
});
