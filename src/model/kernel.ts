// What the kernel holds, as parsed from iptables-save, ipset save, ip -j and
// ip neigh. Produced by src/parse/, consumed by the pure planner.

/** One rule of an iptables-save dump: the argument tokens after "-A CHAIN". */
export interface IptRule {
  readonly chain: string;
  readonly args: readonly string[];
  /** [packets, bytes] when the dump was taken with -c. */
  readonly counters?: readonly [number, number];
  readonly spec: RuleSpec;
}

/** The structured reading of a rule's arguments ("our parser of iptables output into JSON"). */
export interface RuleSpec {
  readonly protocol?: Negatable;
  readonly source?: Negatable;
  readonly destination?: Negatable;
  readonly inInterface?: Negatable;
  readonly outInterface?: Negatable;
  readonly matches: readonly { readonly module: string; readonly options: readonly string[] }[];
  readonly jump?: string;
  readonly goto?: string;
  readonly targetOptions: readonly string[];
}

export interface Negatable {
  readonly value: string;
  readonly negated: boolean;
}

export interface IptChain {
  readonly name: string;
  /** ACCEPT/DROP/… for built-in chains, null for user-defined ones ("-"). */
  readonly policy: string | null;
  readonly counters?: readonly [number, number];
}

export interface IptTable {
  readonly name: string;
  readonly chains: readonly IptChain[];
  readonly rules: readonly IptRule[];
}

export interface IpsetSet {
  readonly name: string;
  readonly type: string;
  /** Header options, e.g. { family: "inet", maxelem: "65536", skbinfo: true }. */
  readonly options: Readonly<Record<string, string | true>>;
}

export interface IpsetEntry {
  readonly set: string;
  readonly member: string;
  readonly options: Readonly<Record<string, string | true>>;
}

export interface IpsetDump {
  readonly sets: readonly IpsetSet[];
  readonly entries: readonly IpsetEntry[];
}

export interface IpRule {
  readonly priority: number;
  /** Source selector as CIDR text, or "all". */
  readonly src: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly iif?: string;
  readonly oif?: string;
  /** Table id or name as ip prints it ("main", "3101"). */
  readonly table: string;
  readonly suppressPrefixlength?: number;
  readonly protocol?: string;
  readonly action?: string;
}

export interface Nexthop {
  readonly gateway?: string;
  readonly dev: string;
  readonly weight: number;
  readonly onlink: boolean;
}

export interface IpRoute {
  readonly table: string;
  /** "default" or CIDR text. */
  readonly dst: string;
  readonly type: string;
  readonly protocol?: string;
  readonly metric?: number;
  readonly nexthops: readonly Nexthop[];
  /** Nexthop flags such as linkdown/dead, kept for status, ignored when comparing. */
  readonly linkdown: boolean;
}

export interface LinkAddress {
  readonly local: string;
  /** Point-to-point peer (ppp): the natural gateway. */
  readonly peer?: string;
  readonly prefixlen: number;
}

export interface Link {
  readonly name: string;
  readonly index: number;
  /** Administratively up. */
  readonly up: boolean;
  /** Carrier present. */
  readonly lowerUp: boolean;
  readonly mac?: string;
  readonly pointToPoint: boolean;
  readonly addresses: readonly LinkAddress[];
  /** Its IPv6 addresses beyond the link (global or unique local, not temporary or deprecated), as ip prints them. */
  readonly addresses6: readonly string[];
  /** Its IPv6 addresses that carry our prefix-route metric (core/contract.ts ADDRESS_METRIC): the ones the dispatcher added, as "address/prefixlen". */
  readonly owned6: readonly string[];
}

export interface Neighbour {
  readonly ip: string;
  readonly mac: string;
  readonly dev: string;
  /** A resolved entry (a state with a link-layer address). */
  readonly complete: boolean;
}

/** One family's ip rules and the routes of every table (ours are picked out by table id). */
export interface FamilyRouting {
  readonly rules: readonly IpRule[];
  readonly routes: readonly IpRoute[];
}

/**
 * The kernel state every netfilter backend shares, read in one observation:
 * ip rules, routes, links and the sysctls a config touches. (The packet
 * filter's part is the backend's own observation: src/backends/.)
 */
export interface RoutingState extends FamilyRouting {
  /** IPv6's rules and routes (read always: flush removes ours whatever the config says now). */
  readonly ipv6: FamilyRouting;
  readonly links: readonly Link[];
  readonly sysctls: Readonly<Record<string, string>>;
}

/** A change `ip monitor rule route` reported: a rule, or a route by its table and destination. */
export type RoutingEvent = { readonly kind: 'rule'; readonly deleted: boolean; readonly rule: IpRule } | { readonly kind: 'route'; readonly deleted: boolean; readonly table: string; readonly dst: string };
