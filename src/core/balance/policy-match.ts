// What a policy's `match` means (pure): which packets it takes, and whether an
// earlier policy takes every packet a later one would (first match wins, so
// the later one could never match and the config is refused). The kernel does
// the matching itself (the backends spell a match as set lookups); this room
// answers the same question for `explain` and for the config check.

import { type Cidr, cidrContains, parseCidr, parseIpv4 } from '../ipv4.js';

export const POLICY_PROTOCOLS = ['tcp', 'udp', 'sctp', 'icmp'] as const;
export type PolicyProtocol = (typeof POLICY_PROTOCOLS)[number];
/** The protocols with ports; a port match without a protocol means tcp or udp. */
export const PORTED_PROTOCOLS: readonly PolicyProtocol[] = ['tcp', 'udp', 'sctp'];

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** A policy's match, normalised: an empty list matches anything in that respect. */
export interface PolicyMatch {
  /** Source networks ("a.b.c.d/n"). */
  readonly sources: readonly string[];
  /** Source MAC addresses, lower case. */
  readonly macs: readonly string[];
  readonly destinations: readonly string[];
  readonly protocols: readonly PolicyProtocol[];
  /** Destination ports. */
  readonly ports: readonly PortRange[];
  /** DSCP values of the connection's first packet. */
  readonly dscp: readonly number[];
}

/** A packet as explain describes it; a field left out is unknown (a policy that needs it does not match). */
export interface PacketFacts {
  readonly source: string;
  readonly mac?: string;
  readonly destination?: string;
  readonly protocol?: PolicyProtocol;
  readonly port?: number;
  readonly dscp?: number;
}

/** What a packet must also say for the policy to be judged: the match's kinds that explain was not told. */
export function unknownFacts(match: PolicyMatch, packet: PacketFacts): string[] {
  const missing: string[] = [];
  if (match.destinations.length > 0 && packet.destination === undefined) missing.push('destination (--to)');
  if (match.protocols.length > 0 && packet.protocol === undefined) missing.push('protocol (--protocol)');
  if (match.ports.length > 0 && packet.port === undefined) missing.push('port (--port)');
  if (match.dscp.length > 0 && packet.dscp === undefined) missing.push('DSCP (--dscp)');
  return missing;
}

function inNetworks(networks: readonly string[], address: string | undefined): boolean {
  const value = address === undefined ? null : parseIpv4(address);
  return value !== null && networks.some((text) => cidrContains(parseCidr(text) as Cidr, value));
}

/** Whether the packet could be one the policy takes: what is known matches, what is unknown is taken as matching. */
export function mayMatch(match: PolicyMatch, packet: PacketFacts): boolean {
  const known: PolicyMatch = {
    ...match,
    destinations: packet.destination === undefined ? [] : match.destinations,
    protocols: packet.protocol === undefined ? [] : match.protocols,
    ports: packet.port === undefined ? [] : match.ports,
    dscp: packet.dscp === undefined ? [] : match.dscp,
  };
  return matchesPacket(known, packet);
}

/** Whether the packet is one the policy takes; a packet with an unknown field a policy needs is not. */
export function matchesPacket(match: PolicyMatch, packet: PacketFacts): boolean {
  const bySource = match.sources.length + match.macs.length === 0 || inNetworks(match.sources, packet.source) || (packet.mac !== undefined && match.macs.includes(packet.mac.toLowerCase()));
  const byDestination = match.destinations.length === 0 || inNetworks(match.destinations, packet.destination);
  const byProtocol = match.protocols.length === 0 || (packet.protocol !== undefined && match.protocols.includes(packet.protocol));
  const byPort = match.ports.length === 0 || (packet.port !== undefined && match.ports.some((r) => packet.port !== undefined && packet.port >= r.from && packet.port <= r.to));
  const byDscp = match.dscp.length === 0 || (packet.dscp !== undefined && match.dscp.includes(packet.dscp));
  return bySource && byDestination && byProtocol && byPort && byDscp;
}

type Interval = readonly [number, number];

/** Whether the union of `outer` holds every interval of `inner` (both inclusive). */
function intervalsCover(outer: readonly Interval[], inner: readonly Interval[]): boolean {
  const merged: [number, number][] = [];
  for (const [from, to] of [...outer].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return inner.every(([from, to]) => merged.some(([a, b]) => a <= from && to <= b));
}

const networkIntervals = (networks: readonly string[]): Interval[] =>
  networks.map((text) => {
    const cidr = parseCidr(text) as Cidr;
    return [cidr.network, cidr.network + 2 ** (32 - cidr.prefix) - 1];
  });

/** An empty list (anything) covers every list; a non-empty one covers only lists within it. */
function listCovers<T>(outer: readonly T[], inner: readonly T[], covers: (outer: readonly T[], inner: readonly T[]) => boolean): boolean {
  if (outer.length === 0) return true;
  return inner.length > 0 && covers(outer, inner);
}

const subset = <T>(outer: readonly T[], inner: readonly T[]): boolean => inner.every((item) => outer.includes(item));

/**
 * Whether every packet `later` matches is matched by `earlier` too. Only what
 * can be proven: a later policy naming MACs is covered only by an earlier one
 * that takes any source or lists those MACs (an address says nothing about a MAC).
 */
export function covers(earlier: PolicyMatch, later: PolicyMatch): boolean {
  const anySource = (m: PolicyMatch): boolean => m.sources.length + m.macs.length === 0;
  const bySource =
    anySource(earlier) ||
    (!anySource(later) && subset(earlier.macs, later.macs) && (later.sources.length === 0 || (earlier.sources.length > 0 && intervalsCover(networkIntervals(earlier.sources), networkIntervals(later.sources)))));
  return (
    bySource &&
    listCovers(earlier.destinations, later.destinations, (o, i) => intervalsCover(networkIntervals(o), networkIntervals(i))) &&
    listCovers(earlier.protocols, later.protocols, subset) &&
    listCovers(earlier.ports, later.ports, (o, i) =>
      intervalsCover(
        o.map((r) => [r.from, r.to]),
        i.map((r) => [r.from, r.to]),
      ),
    ) &&
    listCovers(earlier.dscp, later.dscp, subset)
  );
}

/** A port range as a tool writes it: "443", or "8000-8080" (nft, messages) / "8000:8080" (iptables). */
export function formatPorts(range: PortRange, separator: '-' | ':' = '-'): string {
  return range.from === range.to ? String(range.from) : `${range.from}${separator}${range.to}`;
}

/** A match in a few words, for explain and status: "from 198.18.5.0/24 to 203.0.113.0/24 tcp port 443". */
export function describeMatch(match: PolicyMatch): string {
  const parts: string[] = [];
  const from = [...match.sources, ...match.macs];
  if (from.length > 0) parts.push(`from ${from.join(', ')}`);
  if (match.destinations.length > 0) parts.push(`to ${match.destinations.join(', ')}`);
  if (match.protocols.length > 0) parts.push(match.protocols.join('/'));
  if (match.ports.length > 0) parts.push(`port ${match.ports.map((r) => formatPorts(r)).join(', ')}`);
  if (match.dscp.length > 0) parts.push(`DSCP ${match.dscp.join(', ')}`);
  return parts.length > 0 ? parts.join(' ') : 'every new connection';
}
