// IPv6 address classes and prefixes, on the 128-bit values of core/address.ts.
// What the config checks and the client filter need to tell a prefix a LAN or
// an uplink can use (global unicast or unique local) from the ones it cannot
// (link-local, multicast, loopback, IPv4-mapped, the unspecified address).

import { formatIpv6, formatNetwork, parseIpv6, parseNetwork } from './address.js';

export interface Ipv6Network {
  readonly network: bigint;
  readonly prefix: number;
}

const ALL_ONES = (1n << 128n) - 1n;

function maskOf(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_ONES << BigInt(128 - prefix)) & ALL_ONES;
}

const within = (value: bigint, network: bigint, prefix: number): boolean => (value & maskOf(prefix)) === network;

/** fe80::/10: valid on one link only; a next hop may be one, a client's or a prefix's address may not. */
export function isLinkLocal6(value: bigint): boolean {
  return within(value, 0xfe80n << 112n, 10);
}

export function isMulticast6(value: bigint): boolean {
  return within(value, 0xffn << 120n, 8);
}

/** An address a host can have on a link: not ::, ::1, multicast or IPv4-mapped (::ffff:0:0/96). */
export function isUnicast6(value: bigint): boolean {
  return value !== 0n && value !== 1n && !isMulticast6(value) && !within(value, 0xffffn << 32n, 96);
}

/** fc00::/7: unique local, routed inside a site only (never published to the internet's DNS). */
export function isUniqueLocal6(value: bigint): boolean {
  return within(value, 0xfcn << 120n, 7);
}

/** A host's own address beyond its link: unicast and not link-local (global or unique local). */
export function isRoutable6(value: bigint): boolean {
  return isUnicast6(value) && !isLinkLocal6(value);
}

export function parseIpv6Network(text: string): Ipv6Network | null {
  const parsed = parseNetwork(text);
  return parsed?.family === 'ipv6' ? { network: parsed.network, prefix: parsed.prefix } : null;
}

export function formatIpv6Network(network: Ipv6Network): string {
  return formatNetwork({ family: 'ipv6', ...network });
}

export function ipv6NetworkContains(network: Ipv6Network, value: bigint): boolean {
  return within(value, network.network, network.prefix);
}

/** Whether a prefix's text holds an address's text (false when either is no IPv6). */
export function inIpv6Prefix(prefix: string, address: string): boolean {
  const network = parseIpv6Network(prefix);
  const value = parseIpv6(address);
  return network !== null && value !== null && ipv6NetworkContains(network, value);
}

/**
 * An address as a prefix translation (NETMAP, nft's `snat ip6 prefix to`)
 * rewrites it: the bits of `to`'s prefix replaced, the rest kept; null when
 * either text is no IPv6 address or network.
 */
export function translate6(address: string, to: string): string | null {
  const value = parseIpv6(address);
  const network = parseIpv6Network(to);
  if (value === null || network === null) return null;
  return formatIpv6((value & ~maskOf(network.prefix) & ALL_ONES) | network.network);
}

export function ipv6NetworksOverlap(a: Ipv6Network, b: Ipv6Network): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return (a.network & maskOf(prefix)) === (b.network & maskOf(prefix));
}

/**
 * What keeps a text from being a prefix a LAN or an uplink can use, in the
 * operator's words, or null when it is one (longest: its longest allowed length).
 */
export function ipv6PrefixProblem(text: string, longest: number): string | null {
  const parsed = parseIpv6Network(text);
  if (parsed === null) {
    const slash = text.indexOf('/');
    const address = parseIpv6(slash < 0 ? text : text.slice(0, slash));
    if (address === null) return `"${text}" is not an IPv6 network`;
    if (slash < 0) return `"${text}" has no prefix length`;
    const length = Number(text.slice(slash + 1));
    if (!Number.isInteger(length) || length < 0 || length > 128) return `"${text}" has no valid prefix length`;
    return `"${text}" has host bits set (the network is ${formatIpv6Network({ network: address & maskOf(length), prefix: length })})`;
  }
  if (parsed.prefix === 0) return `"${text}" is every address, not a prefix of yours`;
  if (isLinkLocal6(parsed.network)) return `"${text}" is link-local (fe80::/10), valid on one link only`;
  if (isMulticast6(parsed.network)) return `"${text}" is multicast`;
  if (!isUnicast6(parsed.network) || parsed.prefix < 8) return `"${text}" is not a unicast prefix`;
  if (parsed.prefix > longest) return `"${text}" is longer than /${longest}`;
  return null;
}
