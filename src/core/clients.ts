// Which neighbour entries are LAN clients: resolved entries with a unicast
// MAC on a LAN interface, inside the configured subnets (or any unicast host
// address when none are configured), never the gateway's own addresses, a
// subnet's broadcast address, or anything on an uplink.

import type { Config } from '../model/config.js';
import type { Link, Neighbour } from '../model/kernel.js';
import type { ClientRecord } from '../model/state.js';
import { formatIpv6, parseIpv6 } from './address.js';
import { holderOf6, hostOf6, IPV6_PER_HOST } from './assign6.js';
import { inIpv6Prefix, ipv6NetworkContains, isRoutable6, parseIpv6Network } from './ipv6.js';
import { broadcastOf, cidrContains, isUnicastHost, maskOf, parseCidr, parseIpv4, type Cidr } from './ipv4.js';

export interface ClientFilter {
  admits(neighbour: Neighbour): boolean;
}

/** Whether an address lies in lan.subnets (any address when none are configured); the subnets are parsed once. */
export function inLanSubnets(config: Config): (address: number) => boolean {
  const subnets = config.lan.subnets.map((s) => parseCidr(s) as Cidr);
  return (address) => subnets.length === 0 || subnets.some((subnet) => cidrContains(subnet, address));
}

/** Builds the filter once per config and link state, so admitting is cheap per entry. */
export function clientFilter(config: Config, links: readonly Link[]): ClientFilter {
  const interfaces = new Set(config.lan.interfaces);
  const subnets = config.lan.subnets.map((s) => parseCidr(s) as Cidr);
  const inLan = inLanSubnets(config);
  const excluded = new Set<number>();
  for (const link of links) {
    for (const address of link.addresses) {
      const local = parseIpv4(address.local);
      if (local === null) continue;
      excluded.add(local);
      const broadcast = broadcastOf({ network: (local & maskOf(address.prefixlen)) >>> 0, prefix: address.prefixlen });
      if (broadcast !== null) excluded.add(broadcast);
    }
  }
  for (const subnet of subnets) {
    const broadcast = broadcastOf(subnet);
    if (broadcast !== null) excluded.add(broadcast);
  }
  const admits6 = ipv6Filter(config, links);
  return {
    admits(neighbour: Neighbour): boolean {
      if (!neighbour.complete || !interfaces.has(neighbour.dev) || !isUnicastMac(neighbour.mac)) return false;
      if (neighbour.ip.includes(':')) return admits6(neighbour.ip);
      const address = parseIpv4(neighbour.ip);
      if (address === null || !isUnicastHost(address) || excluded.has(address)) return false;
      return inLan(address);
    },
  };
}

/** IPv6 entries are a host's addresses in nat mode: inside lan.ipv6.prefix, never the gateway's own. */
function ipv6Filter(config: Config, links: readonly Link[]): (ip: string) => boolean {
  const prefix = config.lan.ipv6.prefix;
  if (config.lan.ipv6.mode !== 'nat' || prefix === null) return () => false;
  const network = parseIpv6Network(prefix);
  const own = new Set(links.flatMap((l) => l.addresses6));
  return (ip) => {
    const value = parseIpv6(ip);
    return network !== null && value !== null && isRoutable6(value) && ipv6NetworkContains(network, value) && !own.has(formatIpv6(value));
  };
}

/**
 * An IPv6 neighbour is news only when it can join a host now: inside the
 * LAN's prefix (link-local entries, other prefixes and IPv6-only hosts never
 * join), at a MAC an IPv4 client has, not yet held by that host, and the
 * host has room (a full host learns new addresses at the next scan).
 */
function isIpv6News(config: Config, assignments: ReadonlyMap<string, ClientRecord>, neighbour: Neighbour): boolean {
  const prefix = config.lan.ipv6.prefix;
  if (config.lan.ipv6.mode !== 'nat' || prefix === null || !inIpv6Prefix(prefix, neighbour.ip)) return false;
  const value = parseIpv6(neighbour.ip);
  if (value === null || !isRoutable6(value)) return false;
  const host = hostOf6(assignments, neighbour.mac, neighbour.dev);
  if (host === undefined || holderOf6(assignments, neighbour.ip) === host) return false;
  return Object.keys(host.ipv6 ?? {}).length < IPV6_PER_HOST;
}

/** A station's own MAC: not multicast or broadcast (the group bit of the first octet is clear). */
export function isUnicastMac(mac: string): boolean {
  const first = parseInt(mac.slice(0, 2), 16);
  return Number.isInteger(first) && (first & 1) === 0 && mac !== '00:00:00:00:00:00';
}

/**
 * Whether a neighbour event can change anything. The kernel reports every
 * state change (REACHABLE → STALE → DELAY → REACHABLE every few tens of
 * seconds per host, the ISPs' routers included), and with tens of thousands
 * of clients a full run per report would keep the daemon busy all day. Known
 * clients at their known MAC and interface, and anything off the LAN, are
 * left to the scheduled scan (which also refreshes "last seen").
 */
export function isNeighbourNews(config: Config, assignments: ReadonlyMap<string, ClientRecord>, neighbour: Neighbour): boolean {
  if (!config.lan.interfaces.includes(neighbour.dev)) return false;
  if (neighbour.ip.includes(':')) return isIpv6News(config, assignments, neighbour);
  const known = assignments.get(neighbour.ip);
  return known === undefined || known.mac !== neighbour.mac || known.interface !== neighbour.dev;
}
