import { describe, expect, it } from 'vitest';
import { isPublicAddress, literalAddress } from '../../internal/channels/webhookTarget.ts';

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
