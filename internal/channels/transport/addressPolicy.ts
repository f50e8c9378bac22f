import dns, { type LookupAddress, type LookupAllOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { NonPublicAddressError } from './nonPublicAddressError.ts';

/**
 * Whether an address is one a webhook may reach without `WEBHOOK_ALLOW_PRIVATE`: only public
 * unicast. Loopback, private, link-local (cloud metadata lives there), carrier-grade NAT, unique
 * local and the like are refused, so a producer cannot point the service at its own network.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === 'unicast';
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
