import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

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

/** Resolves a webhook URL's host; returns the first address that is not public, if any. */
export async function findNonPublicAddress(url: URL): Promise<string | undefined> {
  const literal = literalAddress(url);
  const addresses = literal ? [literal] : (await lookup(url.hostname, { all: true })).map((a) => a.address);
  return addresses.find((a) => !isPublicAddress(a));
}
