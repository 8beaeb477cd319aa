// Addresses as values of either family. An IPv4 address keeps the unsigned
// 32-bit number of ipv4.ts (parsing it is on the hot path of every run, so
// it goes through parseIpv4 unchanged); an IPv6 address is a 128-bit bigint.
// Both are tagged with their family, so code that receives an address can
// ask which one it has instead of guessing from its text.
//
// Text forms: IPv4 as ipv4.ts (strict dotted quad). IPv6 as RFC 4291 §2.2:
// eight groups of 1-4 hex digits, one "::" for a run of zero groups, an
// optional dotted quad in the last 32 bits; no zone ("fe80::1%eth0") and no
// brackets. Formatting follows inet_ntop (what ip, ipset and conntrack
// print), so a formatted address compares equal to the tools' text: lower
// case, no leading zeros, the longest run of two or more zero groups
// (leftmost on a tie) as "::", and mixed notation for ::ffff:a.b.c.d and ::a.b.c.d.

import type { Family } from './family.js';
import { cidrContains, formatIpv4, maskOf, parseIpv4 } from './ipv4.js';

export interface Ipv4Address {
  readonly family: 'ipv4';
  readonly value: number;
}

export interface Ipv6Address {
  readonly family: 'ipv6';
  readonly value: bigint;
}

export type Address = Ipv4Address | Ipv6Address;

/** A network of either family: its address with the host bits zero, and its prefix length. */
export type Network = { readonly family: 'ipv4'; readonly network: number; readonly prefix: number } | { readonly family: 'ipv6'; readonly network: bigint; readonly prefix: number };

const ALL_ONES_128 = (1n << 128n) - 1n;

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/** Parses one side of "::" (or the whole address): groups separated by ':', the last may be a dotted quad. null when malformed. */
function groupsOf(text: string, lastMayBeIpv4: boolean): number[] | null {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (lastMayBeIpv4 && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === null) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
      continue;
    }
    if (part.length === 0 || part.length > 4) return null;
    let value = 0;
    for (let j = 0; j < part.length; j++) {
      const digit = hexDigit(part.charCodeAt(j));
      if (digit < 0) return null;
      value = value * 16 + digit;
    }
    groups.push(value);
  }
  return groups;
}

/** Parses an IPv6 address to its 128-bit value; null for anything that is not exactly one. */
export function parseIpv6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45) return null;
  const gap = text.indexOf('::');
  let groups: number[] | null;
  if (gap < 0) {
    groups = groupsOf(text, true);
    if (groups === null || groups.length !== 8) return null;
  } else {
    if (text.indexOf('::', gap + 1) >= 0) return null;
    const head = groupsOf(text.slice(0, gap), false);
    const tail = groupsOf(text.slice(gap + 2), true);
    // "::" stands for at least one zero group.
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(group);
  return value;
}

function groupsOfValue(value: bigint): number[] {
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  return groups;
}

/** The text inet_ntop gives for a 128-bit value. */
export function formatIpv6(value: bigint): string {
  const groups = groupsOfValue(value);
  // The longest run of zero groups (two or more), the leftmost on a tie.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) bestStart = -1;
  // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses end in a dotted quad.
  const mixed = bestStart === 0 && (bestLength === 6 || (bestLength === 5 && groups[5] === 0xffff));
  const hexGroups = mixed ? groups.slice(0, 6) : groups;
  const text = (from: number, to: number): string =>
    hexGroups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  let out: string;
  if (bestStart < 0) out = text(0, hexGroups.length);
  else out = `${text(0, bestStart)}::${text(bestStart + bestLength, hexGroups.length)}`;
  if (!mixed) return out;
  const quad = formatIpv4(Number(value & 0xffffffffn));
  return out.endsWith(':') ? `${out}${quad}` : `${out}:${quad}`;
}

/** The family an address's text belongs to, or null when it is no address of either. */
export function familyOf(text: string): Family | null {
  if (parseIpv4(text) !== null) return 'ipv4';
  return text.includes(':') && parseIpv6(text) !== null ? 'ipv6' : null;
}

export function parseAddress(text: string): Address | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 'ipv4', value: v4 };
  if (!text.includes(':')) return null;
  const v6 = parseIpv6(text);
  return v6 === null ? null : { family: 'ipv6', value: v6 };
}

export function formatAddress(address: Address): string {
  return address.family === 'ipv4' ? formatIpv4(address.value) : formatIpv6(address.value);
}

/** Orders addresses: IPv4 before IPv6, then by value. */
export function compareAddresses(a: Address, b: Address): number {
  if (a.family !== b.family) return a.family === 'ipv4' ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.family === b.family && a.value === b.value;
}

function maskOf128(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_ONES_128 << BigInt(128 - prefix)) & ALL_ONES_128;
}

/** Parses "address/length" of either family (a bare address is a host network: /32, /128); host bits must be zero. */
export function parseNetwork(text: string): Network | null {
  const slash = text.indexOf('/');
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (address === null) return null;
  const bits = address.family === 'ipv4' ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > bits) return null;
  if (address.family === 'ipv4') {
    if ((address.value & ~maskOf(prefix)) >>> 0 !== 0) return null;
    return { family: 'ipv4', network: address.value, prefix };
  }
  if ((address.value & ~maskOf128(prefix) & ALL_ONES_128) !== 0n) return null;
  return { family: 'ipv6', network: address.value, prefix };
}

export function formatNetwork(network: Network): string {
  const address = network.family === 'ipv4' ? formatIpv4(network.network) : formatIpv6(network.network);
  return `${address}/${network.prefix}`;
}

/** Whether an address lies in a network; never across families. */
export function networkContains(network: Network, address: Address): boolean {
  if (network.family === 'ipv4') return address.family === 'ipv4' && cidrContains(network, address.value);
  return address.family === 'ipv6' && (address.value & maskOf128(network.prefix)) === network.network;
}
