// IPv4 addresses as unsigned 32-bit numbers. Strict on purpose: text from ARP,
// config and hook arguments is untrusted, so "010.1.1.1", " 1.2.3.4" or
// "1.2.3" are rejected rather than guessed at. Hot paths (neighbours, set
// entries) use these numbers directly; address.ts wraps them with IPv6 as
// values of either family where code must accept both.

export interface Cidr {
  readonly network: number;
  readonly prefix: number;
}

/**
 * Parses a dotted quad; returns null for anything that is not exactly one
 * (four decimal octets, no leading zeros, no signs or spaces). Hand-rolled:
 * it runs for every neighbour and set entry, tens of thousands per run.
 */
export function parseIpv4(text: string): number | null {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (code >= 48 && code <= 57) {
      if (digits > 0 && octet === 0) return null; // a leading zero
      octet = octet * 10 + (code - 48);
      digits++;
      if (octet > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + octet;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== null;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** The netmask of a prefix length as a number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n" (or a bare address as /32); host bits must be zero. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? '32' : text.slice(slash + 1);
  const address = parseIpv4(addressText);
  if (address === null || !/^(0|[1-9][0-9]?)$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > 32) return null;
  if ((address & ~maskOf(prefix)) >>> 0 !== 0) return null;
  return { network: address, prefix };
}

/** "198.18.0.0/16" or "198.18.0.5" as an inclusive numeric range; null when it is neither. */
export function cidrRange(text: string): readonly [number, number] | null {
  const cidr = parseCidr(text);
  return cidr ? [cidr.network, cidr.network + 2 ** (32 - cidr.prefix) - 1] : null;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return (address & maskOf(cidr.prefix)) >>> 0 === cidr.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = maskOf(prefix);
  return (a.network & mask) >>> 0 === (b.network & mask) >>> 0;
}

/**
 * Whether an address can be a LAN client at all: not unspecified, loopback,
 * link-local, multicast, broadcast or reserved (240/4).
 */
export function isUnicastHost(address: number): boolean {
  const first = address >>> 24;
  if (address === 0 || first === 0 || first === 127) return false;
  if (first >= 224) return false;
  if (first === 169 && ((address >>> 16) & 255) === 254) return false;
  return true;
}

/** The directed broadcast address of a prefix (/31 and /32 have none). */
export function broadcastOf(cidr: Cidr): number | null {
  if (cidr.prefix >= 31) return null;
  return (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
}

/** 127.0.0.0/8: only this host reaches it. */
export function isLoopback(text: string): boolean {
  const address = parseIpv4(text);
  return address !== null && address >>> 24 === 127;
}
