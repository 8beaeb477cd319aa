// The fake's links, their IPv4 addresses and the neighbour table, printed as
// `ip -j addr show`, `ip -j -s link show`, `ip -4 neigh show` and the lines
// `ip monitor link address` / `ip monitor neigh` print. Links change only by
// the test (the daemon never creates links): the helpers here are the world
// around the gateway (a cable pulled, a ppp line redialled, a client arriving).

import { ipv4 } from './failure.js';

export type LinkKind = 'loopback' | 'ether' | 'ppp';

export interface Address {
  readonly local: string;
  readonly prefixlen: number;
  /** The far end of a point-to-point link (ppp). */
  readonly peer?: string;
}

export interface Link {
  readonly index: number;
  readonly name: string;
  readonly kind: LinkKind;
  readonly mac: string;
  up: boolean;
  carrier: boolean;
  addresses: Address[];
  rxBytes: number;
  txBytes: number;
}

export interface Neighbour {
  readonly ip: string;
  readonly dev: string;
  readonly mac?: string;
  readonly state: string;
}

export function cloneLink(link: Link): Link {
  return { ...link, addresses: [...link.addresses] };
}

function linkFlags(link: Link): string[] {
  const kind = link.kind === 'loopback' ? ['LOOPBACK'] : link.kind === 'ppp' ? ['POINTOPOINT', 'MULTICAST', 'NOARP'] : ['BROADCAST', 'MULTICAST'];
  if (!link.up) return kind;
  return link.carrier ? [...kind, 'UP', 'LOWER_UP'] : ['NO-CARRIER', ...kind, 'UP'];
}

function operstate(link: Link): string {
  if (link.kind === 'loopback') return 'UNKNOWN';
  return link.up && link.carrier ? 'UP' : link.up ? 'LOWERLAYERDOWN' : 'DOWN';
}

/** The broadcast address of an address's subnet (none for /31 and /32). */
export function broadcastOf(address: Address): string | undefined {
  if (address.peer !== undefined || address.prefixlen >= 31) return undefined;
  const n = ipv4(address.local) as number;
  const host = address.prefixlen === 0 ? 0xffffffff : (1 << (32 - address.prefixlen)) - 1;
  const b = (n | host) >>> 0;
  return [b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join('.');
}

function linkHeader(link: Link): Record<string, unknown> {
  return {
    ifindex: link.index,
    ifname: link.name,
    flags: linkFlags(link),
    mtu: link.kind === 'loopback' ? 65536 : link.kind === 'ppp' ? 1492 : 1500,
    qdisc: 'noqueue',
    operstate: operstate(link),
    group: 'default',
    txqlen: 1000,
    link_type: link.kind === 'loopback' ? 'loopback' : link.kind === 'ppp' ? 'ppp' : 'ether',
    ...(link.kind === 'ppp' ? {} : { address: link.mac, broadcast: link.kind === 'loopback' ? link.mac : 'ff:ff:ff:ff:ff:ff' }),
  };
}

function addrInfo(link: Link, address: Address): Record<string, unknown> {
  const brd = broadcastOf(address);
  return {
    family: 'inet',
    local: address.local,
    ...(address.peer !== undefined ? { address: address.peer } : {}),
    prefixlen: address.prefixlen,
    ...(brd !== undefined ? { broadcast: brd } : {}),
    scope: link.kind === 'loopback' ? 'host' : 'global',
    label: link.name,
    valid_life_time: 4294967295,
    preferred_life_time: 4294967295,
  };
}

/** `ip -j addr show` */
export function addrJson(links: readonly Link[]): string {
  return `${JSON.stringify(links.map((link) => ({ ...linkHeader(link), addr_info: link.addresses.map((a) => addrInfo(link, a)) })))}\n`;
}

/** `ip -j -s link show` */
export function linkStatsJson(links: readonly Link[]): string {
  return `${JSON.stringify(
    links.map((link) => ({
      ...linkHeader(link),
      stats64: {
        rx: { bytes: link.rxBytes, packets: Math.ceil(link.rxBytes / 100), errors: 0, dropped: 0, over_errors: 0, multicast: 0 },
        tx: { bytes: link.txBytes, packets: Math.ceil(link.txBytes / 100), errors: 0, dropped: 0, carrier_errors: 0, collisions: 0 },
      },
    })),
  )}\n`;
}

/** The line `ip monitor link` prints for a link's new state. */
export function linkEventLine(link: Link): string {
  return `${link.index}: ${link.name}: <${linkFlags(link).join(',')}> mtu 1500 qdisc noqueue state ${operstate(link)} group default`;
}

/** The line `ip monitor address` prints for an address added (or, with `deleted`, removed). */
export function addressEventLine(link: Link, address: Address, deleted = false): string {
  const where = address.peer !== undefined ? `${address.local} peer ${address.peer}/32` : `${address.local}/${address.prefixlen}`;
  const brd = broadcastOf(address);
  return `${deleted ? 'Deleted ' : ''}${link.index}: ${link.name}    inet ${where}${brd ? ` brd ${brd}` : ''} scope global ${link.name}`;
}

/** One line of `ip -4 neigh show` (and of `ip monitor neigh`), trailing space included as ip prints it. */
export function neighbourLine(n: Neighbour): string {
  return `${n.ip} dev ${n.dev}${n.mac ? ` lladdr ${n.mac}` : ''} ${n.state} `;
}

export function neighbourOrder(a: Neighbour, b: Neighbour): number {
  return (ipv4(a.ip) ?? 0) - (ipv4(b.ip) ?? 0) || (a.dev < b.dev ? -1 : a.dev > b.dev ? 1 : 0);
}
