// Desired kernel state (what the planner wants) and the changes that take the
// kernel from what it has to that. Both are plain data: the planner and the
// diff are pure, the renderers turn changes into command payloads.
//
// The netfilter part is an intent in no tool's words (NetfilterIntent): a
// netfilter backend (src/backends/) turns it into its own payload. Routes, ip
// rules and sysctls are shared by every backend and stay here.

import type { Config } from './config.js';
import type { IpRoute, IpRule, Nexthop } from './kernel.js';

/** A policy's match, normalised by the schema (core/balance/policy-match.ts reads it). */
export type PolicyMatch = Config['policies'][number]['match'];

/** One uplink as the packet filter needs it (iptables/README.md, "Marks" and "Groups"). */
export interface NetfilterUplink {
  readonly name: string;
  readonly interface: string;
  /** The connection field's value: saved to the connmark when a connection leaves by (or arrives on) this interface. */
  readonly connMark: number;
  /** The pool field's value of the clients in this uplink's pool. */
  readonly poolMark: number;
  /** Sockets of processes running with this group get connMark (`dispatcher exec --uplink`). */
  readonly group: number;
  /** In a pair: the line's shared address (ha_address), which its connections are translated to instead of masqueraded, so they survive a takeover; null: masquerade. */
  readonly snat: string | null;
}

/**
 * A pair (ha) while this gateway is not master: what it would forward from the
 * LAN, and what arrives for a line's shared address, is dropped until
 * conntrackd has committed the master's connections (`dispatcher ha master`).
 * keepalived adds the addresses before it tells us; a packet of a moved
 * connection let through before the commit would start a new connection
 * entry, or be answered by the gateway itself with a reset.
 */
export interface FenceIntent {
  readonly lans: readonly string[];
  readonly addresses: readonly string[];
}

/**
 * What the gateway's packet filter must do, whatever the tool. For every LAN
 * interface: restore a connection's uplink from the connmark, then give the
 * packet its client's pool mark. For every uplink: save the connection's
 * uplink by egress (and ingress) interface, restore it for the gateway's own
 * connections, mark the uplink's group's sockets, masquerade by its
 * interface, and count bytes per pool both ways.
 */
export interface NetfilterIntent {
  readonly connMask: number;
  readonly poolMask: number;
  readonly lans: readonly string[];
  readonly uplinks: readonly NetfilterUplink[];
  /** Client address → its pool's mark (one of the uplinks' poolMark). */
  readonly clients: ReadonlyMap<string, number>;
  /** clients.max: the classifier's capacity. */
  readonly maxClients: number;
  /** What a LAN connection without a line gets instead of its client's pool: policies, then the balancing mode; null in host mode without policies. */
  readonly choose: ChooseIntent | null;
  /** The hash buckets' pools, when some connections are hashed (core/balance/spread.ts); null otherwise. */
  readonly spread: SpreadIntent | null;
  /** IPv6 (lan.ipv6.mode nat); null: the packet filter leaves IPv6 alone. */
  readonly ipv6: Ipv6Intent | null;
  /** One of a pair, not master: the fence; null otherwise. */
  readonly fence: FenceIntent | null;
}

/**
 * IPv6 in nat mode: a host's IPv6 addresses get its pool's mark (one more map
 * lookup, like IPv4's), and the LAN's own prefix leaves each uplink translated
 * onto that uplink's routed prefix (NPTv6), or masqueraded where it has none.
 */
export interface Ipv6Intent {
  /** The LAN's own prefix: only its sources are translated. */
  readonly lanPrefix: string;
  /** A client's IPv6 address → its host's pool mark. */
  readonly clients: ReadonlyMap<string, number>;
  /** The classifier's capacity for IPv6 addresses (a host has several). */
  readonly maxClients: number;
  /**
   * Per uplink, in config order: the prefix the LAN's is translated onto (null:
   * masquerade to the uplink's address), and the gateway's own translated
   * address, whose new connections arriving on the uplink (or from the LAN)
   * are given to the gateway's LAN address (`to`) so that the line's AAAA
   * record reaches it; null where it is not published (no ddns, the line
   * excluded), nothing is translated or the gateway has no LAN address in the prefix.
   */
  readonly translate: readonly { readonly interface: string; readonly prefix: string | null; readonly inbound: { readonly address: string; readonly to: string } | null }[];
}

/** What the packet filter does with a LAN connection that has no line yet (core/balance/policies.ts). */
export type PolicyAction =
  /** It keeps its client's pool mark (host mode). */
  | { readonly kind: 'keep' }
  /** It gets this pool mark: a `via` list's pool, whose table routes by the list's first live line. */
  | { readonly kind: 'pool'; readonly poolMark: number }
  /** Its hash picks a bucket, the bucket a pool (destination: the two addresses; connection: the whole connection). */
  | { readonly kind: 'hash'; readonly mode: 'destination' | 'connection' };

/** A policy's match as the packet filter checks it: its MACs resolved to the addresses of the clients that have them. */
export interface PolicyFilter {
  /** null: any source. */
  readonly sources: PolicySources | null;
  readonly destinations: PolicyMatch['destinations'];
  readonly protocols: PolicyMatch['protocols'];
  readonly ports: PolicyMatch['ports'];
  readonly dscp: PolicyMatch['dscp'];
}

export interface PolicySources {
  /** The networks the config names: they change only with the config. */
  readonly networks: readonly string[];
  /**
   * The addresses ("a.b.c.d/32") of the clients that stand for the policy's
   * MACs (or the pinned clients): they change with the clients. null: the
   * policy names no MAC. With no network and no host the policy takes nothing.
   */
  readonly hosts: readonly string[] | null;
}

export interface ChooseIntent {
  /** In order, first match wins. */
  readonly policies: readonly { readonly name: string; readonly match: PolicyFilter; readonly action: PolicyAction }[];
  /** For a connection no policy takes: balance.mode. */
  readonly otherwise: PolicyAction;
}

export interface SpreadIntent {
  /** The hash falls into 0 … buckets − 1. */
  readonly buckets: number;
  readonly seed: number;
  /** Contiguous bucket ranges, each with the pool mark its connections get. */
  readonly ranges: readonly { readonly from: number; readonly to: number; readonly uplink: string; readonly poolMark: number }[];
}

export interface DesiredRule {
  readonly priority: number;
  readonly src: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly table: string;
  readonly suppressPrefixlength?: number;
}

export interface DesiredRoute {
  readonly table: string;
  readonly dst: string;
  /** Where it leads; none for an unreachable route. */
  readonly nexthops: readonly Nexthop[];
  /** Absent: a plain route by its nexthops. unreachable: packets it takes are refused with an ICMP error (prefix mode: a fallen line's prefix). */
  readonly type?: 'unreachable';
}

/** An address the gateway takes on a LAN interface (prefix mode: its own address in each line's announced prefix), as "address/prefixlen". */
export interface DesiredAddress {
  readonly interface: string;
  readonly address: string;
}

/**
 * What router advertisements announce on the LAN (IPv6 prefix mode): each
 * line's prefix, preferred while the line carries IPv6, deprecated
 * (preferred lifetime 0) while it does not, so hosts choose another line's
 * addresses for new connections (RFC 8475).
 */
export interface Announcement {
  readonly interface: string;
  readonly prefixes: readonly { readonly uplink: string; readonly prefix: string; readonly preferred: boolean }[];
}

/** One family's policy routing: rules and the routes of our tables. */
export interface DesiredRouting {
  readonly rules: readonly DesiredRule[];
  readonly routes: readonly DesiredRoute[];
}

/** IPv6's routing, and the gateway's own LAN addresses in the announced prefixes (prefix mode). */
export interface DesiredRouting6 extends DesiredRouting {
  readonly addresses: readonly DesiredAddress[];
}

export interface DesiredState extends DesiredRouting {
  /** null: nothing of ours may remain in the packet filter (flush). */
  readonly netfilter: NetfilterIntent | null;
  /** IPv6's rules and routes (same priorities and table ids as IPv4's; the kernel keeps the families apart); empty when IPv6 is off. */
  readonly ipv6: DesiredRouting6;
  /** Router advertisements on the LAN (prefix mode); null: none of ours (radvd, if we started it, is stopped). */
  readonly announce: Announcement | null;
  /** Both families' sysctls. */
  readonly sysctls: Readonly<Record<string, string>>;
}

export interface RouteChange {
  readonly replace: readonly DesiredRoute[];
  readonly remove: readonly IpRoute[];
}

export interface RuleChange {
  readonly add: readonly DesiredRule[];
  readonly remove: readonly IpRule[];
}

/** One family's rule and route changes: one `ip -batch` (`ip -6 -batch` for IPv6). */
export interface FamilyRoutingChange {
  readonly routes: RouteChange;
  readonly rules: RuleChange;
}

export interface AddressChange {
  readonly add: readonly DesiredAddress[];
  readonly remove: readonly DesiredAddress[];
}

/** IPv6's changes: its rules and routes, and the gateway's LAN addresses, in the same `ip -6 -batch`. */
export interface FamilyRoutingChange6 extends FamilyRoutingChange {
  readonly addresses: AddressChange;
}

/** The shared part of a run's changes: loaded with `ip -batch`, `ip -6 -batch` and `sysctl -w`, whatever the backend. */
export interface RoutingChange extends FamilyRoutingChange {
  readonly ipv6: FamilyRoutingChange6;
  readonly sysctls: Readonly<Record<string, string>>;
  /** Rules of other software inside our priority range: left alone, reported. */
  readonly conflicts: readonly string[];
}
