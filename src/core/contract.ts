// The netfilter/routing contract in code: every name, table id, rule priority
// and protocol number the dispatcher owns (documented in iptables/README.md).
// Ownership is by name or by range, so `flush` can remove exactly these.

import type { OwnedRanges } from '../model/state.js';
import { familyContract, type Family } from './family.js';

/** Our routing tables and rule priorities each take a block of this size. */
export const RANGE_SIZE = 100;
/** Uplink tables sit at base+1…, pool tables at base+1+MAX_UPLINKS… */
export const MAX_UPLINKS = 32;
/** Our chains, in any table, start with this. */
export const CHAIN_PREFIX = 'DISPATCHER-';
/** The client → pool-mark set (hash:ip with counters and skbinfo: the clients table's bytes) of IPv4; clientSets() gives each family's. */
export const CLIENT_SET = familyContract('ipv4').clientSet;
/** Built beside CLIENT_SET and swapped in when the set must be recreated. */
export const CLIENT_SET_NEXT = familyContract('ipv4').clientSetNext;

/** A family's client set and the twin that replaces it when it must be recreated. */
export function clientSets(family: Family = 'ipv4'): { readonly current: string; readonly next: string } {
  const contract = familyContract(family);
  return { current: contract.clientSet, next: contract.clientSetNext };
}
/** rtnetlink protocol number stamped on our routes and rules (unassigned in rt_protos). */
export const ROUTE_PROTOCOL = 211;
/**
 * The metric of the prefix route that comes with an address we add to a LAN
 * interface (prefix mode: the gateway's address in each announced prefix).
 * Addresses carry no protocol number (iproute2 6.1 cannot set one), so this
 * is how every run and flush tell ours from the operator's (whose prefix
 * routes have the kernel's 256).
 */
export const ADDRESS_METRIC = 4211;
/** The tables netfilter state is read from and written to. */
export const NETFILTER_TABLES = ['mangle', 'nat'] as const;

export interface Ids {
  readonly tables: {
    readonly first: number;
    readonly last: number;
    /** Weighted multipath over live uplinks: the gateway's own and unassigned traffic. */
    readonly multipath: number;
    uplink(index: number): number;
    pool(index: number): number;
    /** IPv6 prefix mode: where a line's announced prefix leaves (by the line, or refused while it is down). */
    prefix(index: number): number;
    /** Static routes, each via the first live uplink of its list. */
    readonly static: number;
  };
  readonly priorities: {
    readonly first: number;
    readonly last: number;
    /** main without its default route, so LAN and connected routes win over ours. */
    readonly suppressMain: number;
    /** A connection stays on the uplink it started on: ahead of everything else of ours. */
    conn(index: number): number;
    readonly static: number;
    source(index: number): number;
    pool(index: number): number;
    readonly multipath: number;
  };
}

/** Our routing table ids and rule priorities; per family, though IPv6 shares IPv4's numbers (family.ts says why). */
export function ids(config: OwnedRanges, family: Family = 'ipv4'): Ids {
  const base = familyContract(family).tableBase(config);
  const priority = familyContract(family).priorityBase(config);
  return {
    tables: {
      first: base,
      last: base + RANGE_SIZE - 1,
      multipath: base,
      uplink: (index) => base + 1 + index,
      pool: (index) => base + 1 + MAX_UPLINKS + index,
      prefix: (index) => base + 1 + 2 * MAX_UPLINKS + index,
      static: base + RANGE_SIZE - 1,
    },
    priorities: {
      first: priority,
      last: priority + RANGE_SIZE - 1,
      suppressMain: priority,
      conn: (index) => priority + 1 + index,
      static: priority + 1 + MAX_UPLINKS,
      source: (index) => priority + 2 + MAX_UPLINKS + index,
      pool: (index) => priority + 2 + 2 * MAX_UPLINKS + index,
      multipath: priority + RANGE_SIZE - 1,
    },
  };
}

/**
 * The group id whose sockets leave by uplink `index` (`dispatcher exec`): a
 * process run with it gets the uplink's connection mark on every packet.
 */
export function uplinkGroup(config: { readonly groups: { readonly base: number } }, index: number): number {
  return config.groups.base + index;
}

export function isOurChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}

export function isOurTable(config: OwnedRanges, table: string, family: Family = 'ipv4'): boolean {
  const id = /^[0-9]+$/.test(table) ? Number(table) : NaN;
  const { first, last } = ids(config, family).tables;
  return id >= first && id <= last;
}

export function inOurPriorityRange(config: OwnedRanges, priority: number, family: Family = 'ipv4'): boolean {
  const { first, last } = ids(config, family).priorities;
  return priority >= first && priority <= last;
}

export function sameRanges(a: OwnedRanges, b: OwnedRanges): boolean {
  return a.tables.base === b.tables.base && a.rules.priority === b.rules.priority;
}
