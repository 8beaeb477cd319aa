// The gateway's own firewall as doctor and explain judge it (pure): every
// rule set (iptables' filter table, any nftables table) read into one small
// model of conditions and actions, and the flows the dispatcher needs to pass.
// Only what decides a verdict for those flows is modelled; everything else
// becomes an `opaque` condition or action, which the judge reports as
// "cannot judge" rather than guess.

/** The hooks a forwarded or delivered IPv4 packet passes in the filter path. */
export type Hook = 'forward' | 'input';

/** A condition of a rule, as the judge can decide it for a flow. */
export type Condition =
  | { readonly kind: 'iif' | 'oif'; readonly names: readonly string[]; readonly negated: boolean }
  | { readonly kind: 'saddr' | 'daddr'; readonly ranges: readonly AddressRange[]; readonly negated: boolean }
  | { readonly kind: 'protocol'; readonly protocols: readonly string[]; readonly negated: boolean }
  | { readonly kind: 'sport' | 'dport'; readonly ranges: readonly (readonly [number, number])[]; readonly negated: boolean; readonly protocol?: string }
  | { readonly kind: 'icmp-type'; readonly types: readonly string[]; readonly negated: boolean }
  | { readonly kind: 'state'; readonly states: readonly string[]; readonly negated: boolean }
  | { readonly kind: 'local-destination'; readonly local: boolean }
  /** Always true or false for the flows judged (a family, a DNAT status, unicast). */
  | { readonly kind: 'fixed'; readonly holds: boolean }
  /** Narrows to some connections by what a flow leaves open (a rate limit, a time of day). */
  | { readonly kind: 'some'; readonly text: string }
  /** Cannot be decided from the rule set alone (marks, named sets, modules the judge does not know). */
  | { readonly kind: 'opaque'; readonly text: string };

/** Inclusive numeric IPv4 range. */
export type AddressRange = readonly [number, number];

export type Action =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop'; readonly how: string }
  | { readonly kind: 'return' }
  | { readonly kind: 'continue' }
  | { readonly kind: 'jump' | 'goto'; readonly chain: string }
  /** A verdict the rule set does not decide (a userspace queue, an unknown target). */
  | { readonly kind: 'opaque'; readonly text: string };

export interface FwRule {
  readonly conditions: readonly Condition[];
  readonly action: Action;
  /** The rule as its tool prints it, for findings. */
  readonly text: string;
}

/** Who wrote a table, which decides the fix a finding gives. */
export type Owner = 'ufw' | 'firewalld' | 'iptables' | 'nftables';

export interface FwTable {
  /** "iptables filter" or "nft inet filter". */
  readonly label: string;
  /** "ip"/"inet" (nft) or "iptables". */
  readonly family: string;
  readonly name: string;
  readonly owner: Owner;
  readonly chains: ReadonlyMap<string, readonly FwRule[]>;
  /** The chains the kernel enters on a hook, with their policy. */
  readonly baseChains: readonly { readonly chain: string; readonly hook: Hook; readonly policy: 'accept' | 'drop'; readonly priority: number }[];
}

/** A connection's packet as the judge follows it: what a flow fixes is known, the rest is open. */
export interface Flow {
  readonly hook: Hook;
  readonly iif: string;
  /** Absent on input. */
  readonly oif?: string;
  /** The sources it can come from (a client, the LAN's subnets, or the whole internet). */
  readonly saddr: readonly AddressRange[];
  readonly daddr: readonly AddressRange[];
  readonly protocol: 'tcp' | 'udp' | 'icmp';
  /** Known port, or null: any. */
  readonly sport: number | null;
  readonly dport: number | null;
  readonly icmpType?: 'echo-request' | 'echo-reply';
  /** Conntrack's state of the packet: the first of a new connection, or a reply in an established one. */
  readonly state: 'new' | 'established';
  /** Words for findings, e.g. "a new TCP connection (port 443) from lan0 to ppp0". */
  readonly description: string;
}

/** Every table on the filter path, as read (parse/firewall/), and what could not be read. */
export interface RuleSets {
  readonly tables: readonly FwTable[];
  /** What could not be read; the verdicts are then unknown rather than ok. */
  readonly unread: readonly string[];
}

export const ANYWHERE: readonly AddressRange[] = [[0, 0xffffffff]];
