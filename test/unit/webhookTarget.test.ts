import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { describe, expect, it } from 'vitest';
import { NonPublicAddressError, nonPublicAddressIn } from '../../internal/channels/transport/nonPublicAddressError.ts';
import { guardedLookup, isPublicAddress, literalAddress, type LookupAll } from '../../internal/channels/transport/addressPolicy.ts';

describe('isPublicAddress', () => {
  it.each([
    ['127.0.0.1', 'IPv4 loopback'],
    ['127.8.9.10', 'IPv4 loopback range'],
    ['::1', 'IPv6 loopback'],
    ['10.0.0.1', 'RFC 1918 10/8'],
    ['172.16.0.1', 'RFC 1918 172.16/12'],
    ['172.31.255.254', 'RFC 1918 172.16/12 upper end'],
    ['192.168.1.1', 'RFC 1918 192.168/16'],
    ['169.254.169.254', 'link-local cloud metadata'],
    ['100.64.0.1', 'carrier-grade NAT 100.64/10'],
    ['100.127.255.254', 'carrier-grade NAT upper end'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['fc00::1', 'IPv6 unique local fc00::/7'],
    ['fd12:3456::1', 'IPv6 unique local fd00::/8'],
    ['fe80::1', 'IPv6 link-local'],
    ['::', 'IPv6 unspecified'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback in hex form'],
    ['127.1', 'short IPv4 form of loopback'],
    ['0x7f000001', 'hex IPv4 form of loopback'],
    // Every IPv6 form that carries an IPv4 address the packet ends up at.
    ['::7f00:1', 'IPv4-compatible loopback'],
    ['::a00:1', 'IPv4-compatible private'],
    ['::127.0.0.1', 'IPv4-compatible loopback, dotted (ipaddr.js reads this one as mapped)'],
    ['::0x7f.0.0.1', 'IPv4-compatible loopback, dotted with a hex part'],
    ['0:0:0:0:0:0:10.0.0.1', 'IPv4-compatible private, written out'],
    ['::a9fe:a9fe', 'IPv4-compatible metadata'],
    ['::808:808', 'IPv4-compatible public: the whole deprecated range is refused'],
    ['::8.8.8.8', 'IPv4-compatible public, dotted'],
    ['::ffff:0:7f00:1', 'IPv4-translated loopback'],
    ['::ffff:0:808:808', 'IPv4-translated public: SIIT addresses are refused whatever they embed'],
    ['64:ff9b::7f00:1', 'NAT64 loopback'],
    ['64:ff9b::10.0.0.1', 'NAT64 private, dotted'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 metadata'],
    ['64:ff9b::6440:1', 'NAT64 carrier-grade NAT'],
    ['64:ff9b:1::a00:1', 'local-use NAT64, whose embedding cannot be read'],
    ['2002:7f00:1::1', '6to4 loopback'],
    ['2002:a00:1::1', '6to4 private'],
    ['2002:808:808::1', '6to4 public: the deprecated range is refused whatever it embeds'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2606:4700::5efe:a00:1', 'ISATAP identifier embedding a private address'],
    ['2606:4700::200:5efe:7f00:1', 'ISATAP global identifier embedding loopback'],
    ['2606:4700::100:5efe:a9fe:a9fe', 'ISATAP identifier with the group bit, embedding metadata'],
  ])('refuses %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['100.63.255.255'],
    ['100.128.0.1'],
    ['172.32.0.1'],
    ['2001:4860:4860::8888'],
    ['2606:4700:4700::1111'],
    ['::ffff:8.8.8.8'],
    ['64:ff9b::808:808'], // NAT64 of a public address, as DNS64 answers on an IPv6-only network
    ['64:ff9b::1.1.1.1'],
    ['2606:4700::200:5efe:808:808'], // ISATAP identifier embedding a public address
  ])('allows public %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each([['localhost'], ['example.com'], [''], ['999.1.1.1'], ['1.2.3.4.5'], ['::ffff::1::']])('refuses %j, which is no IP literal', (text) => {
    expect(isPublicAddress(text)).toBe(false);
  });
});

describe('literalAddress', () => {
  it('returns IP literals of URLs, without IPv6 brackets', () => {
    expect(literalAddress(new URL('http://127.0.0.1:8080/x'))).toBe('127.0.0.1');
    expect(literalAddress(new URL('http://[::1]/x'))).toBe('::1');
    expect(literalAddress(new URL('https://[2001:4860:4860::8888]/'))).toBe('2001:4860:4860::8888');
  });

  it('returns undefined for host names', () => {
    expect(literalAddress(new URL('https://example.com/hook'))).toBeUndefined();
    expect(literalAddress(new URL('http://localhost:3000/'))).toBeUndefined();
  });

  it('sees numeric IPv4 spellings as the address the URL parser resolved them to', () => {
    const literal = literalAddress(new URL('http://2130706433/'));
    expect(literal).toBe('127.0.0.1');
    expect(isPublicAddress(literal!)).toBe(false);
  });
});

describe('guardedLookup', () => {
  type Answer = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

  /** A resolver that always answers `addresses` (or `err`), recording the options it was given. */
  function resolver(addresses: string[], err: NodeJS.ErrnoException | null = null) {
    const asked: { hostname: string; options: LookupAllOptions }[] = [];
    const lookup: LookupAll = (hostname, options, callback) => {
      asked.push({ hostname, options });
      callback(err, err ? [] : addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
    };
    return { lookup, asked };
  }

  function run(lookup: LookupFunction, hostname: string, options: LookupOptions): Promise<Answer> {
    return new Promise((resolve) => lookup(hostname, options, (err, address, family) => resolve({ err, address, family })));
  }

  it('asks for every address and hands all of them on when the connection asks for all', async () => {
    const dns = resolver(['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']);
    const answer = await run(guardedLookup({ lookup: dns.lookup }), 'example.com', { all: true });
    expect(answer).toEqual({
      err: null,
      address: [
        { address: '93.184.215.14', family: 4 },
        { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
      ],
      family: undefined,
    });
    expect(dns.asked).toEqual([{ hostname: 'example.com', options: { all: true } }]);
  });

  it('hands on the first checked address when the connection asks for one, still checking them all', async () => {
    const dns = resolver(['93.184.215.14', '8.8.8.8']);
    const answer = await run(guardedLookup({ lookup: dns.lookup }), 'example.com', { family: 4 });
    expect(answer).toEqual({ err: null, address: '93.184.215.14', family: 4 });
    expect(dns.asked).toEqual([{ hostname: 'example.com', options: { family: 4, all: true } }]);

    const mixed = await run(guardedLookup({ lookup: resolver(['93.184.215.14', '10.0.0.7']).lookup }), 'example.com', {});
    expect(mixed.err).toBeInstanceOf(NonPublicAddressError);
  });

  it.each([['127.0.0.1'], ['169.254.169.254'], ['::ffff:10.0.0.1'], ['fd00::1'], ['::7f00:1'], ['::127.0.0.1'], ['64:ff9b::a00:1'], ['2002:a9fe:a9fe::1'], ['::ffff:0:a00:1']])(
    'refuses a name with %s among its addresses, naming the name and the address',
    async (address) => {
      const answer = await run(guardedLookup({ lookup: resolver(['8.8.8.8', address]).lookup }), 'attacker.example', { all: true });
      expect(answer.err).toBeInstanceOf(NonPublicAddressError);
      expect(answer.err).toMatchObject({ host: 'attacker.example', address, message: `attacker.example resolves to non-public address ${address}` });
    },
  );

  it('lets the policy decide which addresses pass', async () => {
    const allowLoopback = guardedLookup({ lookup: resolver(['127.0.0.1']).lookup, isAllowed: (a) => a === '127.0.0.1' });
    expect(await run(allowLoopback, 'local.test', { all: true })).toMatchObject({ err: null, address: [{ address: '127.0.0.1', family: 4 }] });
  });

  it('passes a failed lookup on as it is', async () => {
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    const answer = await run(guardedLookup({ lookup: resolver([], notFound).lookup }), 'nowhere.test', { all: true });
    expect(answer.err).toBe(notFound);
  });

  it('treats an empty answer as a name not found', async () => {
    const answer = await run(guardedLookup({ lookup: resolver([]).lookup }), 'empty.test', { all: true });
    expect(answer.err).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('refuses localhost through the system resolver by default', async () => {
    const answer = await run(guardedLookup(), 'localhost', { all: true });
    expect(answer.err).toBeInstanceOf(NonPublicAddressError);
    expect((answer.err as NonPublicAddressError).host).toBe('localhost');
  });
});

describe('nonPublicAddressIn', () => {
  it('finds the refusal in a fetch error\'s cause, and nothing in other errors', () => {
    const refusal = new NonPublicAddressError('rebind.test', '127.0.0.1');
    expect(nonPublicAddressIn(new TypeError('fetch failed', { cause: refusal }))).toBe(refusal);
    expect(nonPublicAddressIn(refusal)).toBe(refusal);
    expect(nonPublicAddressIn(new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') }))).toBeUndefined();
    expect(nonPublicAddressIn('not an error')).toBeUndefined();
  });
});
