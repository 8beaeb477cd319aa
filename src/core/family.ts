// The address family as a parameter of the contract (iptables/README.md):
// every value that differs between IPv4 and IPv6 — set names, the
// iproute2 flag, the netfilter tools, the sysctls — is answered here, in one
// table per family, so a planner or reader that takes a `family` asks this
// module instead of writing `-4` or `net.ipv4.…` itself. IPv6 is planned and
// programmed in lan.ipv6.mode nat (both netfilter backends).

import type { OwnedRanges } from '../model/state.js';

export type Family = 'ipv4' | 'ipv6';

export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

export interface FamilyContract {
  readonly family: Family;
  /** iproute2's family flag (`ip -4 route`, `ip -6 neigh`). */
  readonly ipFlag: '-4' | '-6';
  /** The client → pool-mark set, and its twin built beside it and swapped in when the set must be recreated. */
  readonly clientSet: string;
  readonly clientSetNext: string;
  /** ipset's `family` option of the client set (hash:ip family inet|inet6). */
  readonly setFamily: 'inet' | 'inet6';
  /** nftables' family of an iptables-nft table (`delete table ip mangle`). */
  readonly nftFamily: 'ip' | 'ip6';
  /** The netfilter tools of this family. */
  readonly iptables: {
    readonly tool: string;
    readonly save: string;
    readonly restore: string;
  };
  /** Prefix length of a single host (`src 192.0.2.2/32` in an ip rule). */
  readonly hostPrefix: 32 | 128;
  /**
   * First routing table id and ip rule priority of our blocks. IPv6 shares
   * the configured numbers with IPv4 on purpose: the kernel keeps IPv6
   * routing tables and rules apart from IPv4's (`ip -6 route show table N`
   * and `ip -4 …` are different tables), so the same ids cannot collide and
   * one pair of config keys (tables.base, rules.priority) serves both.
   */
  tableBase(ranges: OwnedRanges): number;
  priorityBase(ranges: OwnedRanges): number;
  /** The forwarding switch the gateway needs, and the value it sets. */
  readonly forwarding: { readonly key: string; readonly value: string };
  /**
   * The per-uplink sysctl the dispatcher sets. IPv4: loose reverse-path
   * filtering (2), as replies may arrive on any uplink. IPv6 has no
   * rp_filter sysctl (reverse-path checks are a netfilter match, off unless
   * configured); its per-uplink setting is accept_ra=2, because with
   * forwarding on the kernel ignores router advertisements on the uplink
   * unless told otherwise, and the uplink's IPv6 default route comes from them.
   */
  uplinkSysctl(iface: string): { readonly key: string; readonly value: string };
}

const CONTRACTS: { readonly [F in Family]: FamilyContract } = {
  ipv4: {
    family: 'ipv4',
    ipFlag: '-4',
    clientSet: 'dispatcher-clients',
    clientSetNext: 'dispatcher-clients-next',
    setFamily: 'inet',
    nftFamily: 'ip',
    iptables: { tool: 'iptables', save: 'iptables-save', restore: 'iptables-restore' },
    hostPrefix: 32,
    tableBase: (ranges) => ranges.tables.base,
    priorityBase: (ranges) => ranges.rules.priority,
    forwarding: { key: 'net.ipv4.ip_forward', value: '1' },
    uplinkSysctl: (iface) => ({ key: `net.ipv4.conf.${iface}.rp_filter`, value: '2' }),
  },
  ipv6: {
    family: 'ipv6',
    ipFlag: '-6',
    // ipset names are at most 31 characters: "dispatcher-clients6-next" is 24.
    clientSet: 'dispatcher-clients6',
    clientSetNext: 'dispatcher-clients6-next',
    setFamily: 'inet6',
    nftFamily: 'ip6',
    iptables: { tool: 'ip6tables', save: 'ip6tables-save', restore: 'ip6tables-restore' },
    hostPrefix: 128,
    tableBase: (ranges) => ranges.tables.base,
    priorityBase: (ranges) => ranges.rules.priority,
    forwarding: { key: 'net.ipv6.conf.all.forwarding', value: '1' },
    uplinkSysctl: (iface) => ({ key: `net.ipv6.conf.${iface}.accept_ra`, value: '2' }),
  },
};

/** The contract values of a family. Returns a shared constant: free to call in any loop. */
export function familyContract(family: Family = 'ipv4'): FamilyContract {
  return CONTRACTS[family];
}

/**
 * The sysctls a gateway routing over these uplink interfaces needs, key →
 * value: the one list both the planner (what to set) and the kernel reader
 * (what to read before changing it) take their keys from.
 */
export function familySysctls(interfaces: readonly string[], family: Family = 'ipv4'): Record<string, string> {
  const contract = CONTRACTS[family];
  const uplinks: Record<string, string> = {};
  for (const iface of interfaces) {
    const { key, value } = contract.uplinkSysctl(iface);
    uplinks[key] = value;
  }
  const forwarding = { [contract.forwarding.key]: contract.forwarding.value };
  // Written in this order (one sysctl -w): turning IPv6 forwarding on deletes the default routes router
  // advertisements installed on every interface whose accept_ra is not 2 yet, so accept_ra goes first.
  return family === 'ipv6' ? { ...uplinks, ...forwarding } : { ...forwarding, ...uplinks };
}
