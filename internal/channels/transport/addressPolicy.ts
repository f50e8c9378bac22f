import dns, { type LookupAddress, type LookupAllOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { NonPublicAddressError } from './nonPublicAddressError.ts';

/**
 * `::a.b.c.d` (in any spelling ipaddr.js takes for the IPv4 part), which ipaddr.js reads as
 * IPv4-mapped (`::ffff:a.b.c.d`) though it is IPv4-compatible.
 */
const IPV4_COMPATIBLE_DOTTED = /^::[^:]*\./;

/**
 * IPv6 ranges that carry an IPv4 address which decides where a packet goes, and what is done with
 * each. An address in one of these passes only as the IPv4 address it stands for would.
 * - `ipv4Mapped` (::ffff:0:0/96): a dual-stack socket connects to the IPv4 address itself.
 * - `rfc6052` (NAT64, 64:ff9b::/96): DNS64 answers a public IPv4-only host this way on an
 *   IPv6-only network, and the translator connects to the embedded address; judged by it, so a
 *   public host stays reachable and a private one does not. (The local-use 64:ff9b:1::/48 of
 *   RFC 8215 places the address where its operator chose, so it cannot be read: refused below.)
 * Every other such range is refused whatever it embeds, since no legitimate target lives there:
 * IPv4-compatible ::/96 (deprecated by RFC 4291; a stack with automatic tunnelling sends it to the
 * IPv4 address), IPv4-translated ::ffff:0:0:0/96 (SIIT, inside a translator's own network), 6to4
 * 2002::/16 (deprecated by RFC 7526, its relays gone) and Teredo 2001::/32: their ranges are not
 * `unicast` to ipaddr.js, apart from ::/96, which is checked here. ISATAP interface identifiers
 * (`…:0:5efe:a.b.c.d`, `…:200:5efe:a.b.c.d`) can follow any prefix; a host with an ISATAP tunnel
 * on that prefix sends them to the embedded address, so one embedding a non-public IPv4 is refused.
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const parts = address.parts;
  const low32 = () => new ipaddr.IPv4([parts[6]! >> 8, parts[6]! & 0xff, parts[7]! >> 8, parts[7]! & 0xff]);
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  if (address.match(ipaddr.IPv6.parse('64:ff9b::'), 96)) return low32();
  // 0000:5efe or 0200:5efe, with the group bit (0100) set or not.
  if ((parts[4]! & 0xfcff) === 0 && parts[5] === 0x5efe) return low32();
  return undefined;
}

/** The IPv4-compatible range ::/96 (its `::` and `::1` are ipaddr.js's `unspecified` and `loopback`). */
function isIPv4Compatible(address: ipaddr.IPv6): boolean {
  return address.match(new ipaddr.IPv6([0, 0, 0, 0, 0, 0, 0, 0]), 96);
}

/**
 * Whether an address is one a webhook may reach without `WEBHOOK_ALLOW_PRIVATE`: only public
 * unicast. Loopback, private, link-local (cloud metadata lives there), carrier-grade NAT, unique
 * local and the like are refused, so a producer cannot point the service at its own network; so
 * is every IPv6 spelling of such an IPv4 address (see `embeddedIPv4`).
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address) || IPV4_COMPATIBLE_DOTTED.test(address)) return false;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') return parsed.range() === 'unicast';
  const ipv6 = parsed as ipaddr.IPv6;
  if (isIPv4Compatible(ipv6)) return false;
  const ipv4 = embeddedIPv4(ipv6);
  if (ipv4) return ipv4.range() === 'unicast';
  return ipv6.range() === 'unicast';
}

/** The host of a URL as an IP literal (IPv6 without brackets), or undefined for a name. */
export function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(host) ? host : undefined;
}

/** The part of `dns.lookup` the guard needs: every address of a name. `dns.lookup` itself fits. */
export type LookupAll = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface AddressPolicy {
  /** Resolves names; `dns.lookup` unless a test answers for it. */
  lookup?: LookupAll;
  /** Which resolved addresses may be connected to; `isPublicAddress` unless a test says otherwise. */
  isAllowed?: (address: string) => boolean;
}

/**
 * A `lookup` for `net.connect` that resolves the name once, checks every address it got and hands
 * the connection only those, all of them checked: the address checked is the address connected to,
 * so a name that answers a public address to a check and 127.0.0.1 to the connection (DNS
 * rebinding) gets nowhere. One non-public address refuses the whole name, with a
 * `NonPublicAddressError` naming it. IP literals never reach a lookup; callers check those themselves.
 */
export function guardedLookup({ lookup = dns.lookup, isAllowed = isPublicAddress }: AddressPolicy = {}): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = addresses.find((a) => !isAllowed(a.address));
      if (refused) return callback(new NonPublicAddressError(hostname, refused.address), []);
      const [first] = addresses;
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND', hostname }), []);
      if (options.all) return callback(null, addresses);
      callback(null, first.address, first.family);
    });
  };
}
