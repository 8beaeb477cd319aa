// Desired kernel state (what the planner wants) and the changes that take the
// kernel from what it has to that. Both are plain data: the planner and the
// diff are pure, the renderers turn changes into command payloads.

import type { IpRoute, IpRule, Nexthop } from './kernel.js';

export interface DesiredChainRule {
  readonly chain: string;
  /** Tokens after "-A CHAIN", in iptables-save's canonical form. */
  readonly args: readonly string[];
}

export interface DesiredNetfilterTable {
  readonly name: string;
  /** Our chains in this table. */
  readonly chains: readonly string[];
  /** Jumps from built-in chains into ours. */
  readonly hooks: readonly { readonly builtin: string; readonly chain: string }[];
  readonly rules: readonly DesiredChainRule[];
}

export interface DesiredSet {
  readonly name: string;
  readonly maxelem: number;
  /** Client address → skbmark "value/mask" text as ipset prints it. */
  readonly entries: ReadonlyMap<string, string>;
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
  readonly nexthops: readonly Nexthop[];
}

export interface DesiredState {
  readonly netfilter: readonly DesiredNetfilterTable[];
  /** null: the client set must not exist (flush). */
  readonly set: DesiredSet | null;
  readonly rules: readonly DesiredRule[];
  readonly routes: readonly DesiredRoute[];
  readonly sysctls: Readonly<Record<string, string>>;
}

export interface NetfilterTableChange {
  readonly table: string;
  /** Chains to (re)write whole: declared with ":CHAIN - [0:0]", which empties them, then filled. */
  readonly writeChains: readonly { readonly chain: string; readonly rules: readonly (readonly string[])[] }[];
  readonly addHooks: readonly { readonly builtin: string; readonly chain: string }[];
  /** Rules outside our chains to delete: duplicate hooks, references to chains we drop. */
  readonly deleteRules: readonly { readonly chain: string; readonly args: readonly string[] }[];
  /** Our chains that are no longer wanted: flushed and deleted. */
  readonly dropChains: readonly string[];
}

export interface SetChange {
  /** Leftover sets of an interrupted swap, destroyed first. */
  readonly destroyStale: readonly string[];
  /** Create the set from scratch (absent), or build CLIENT_SET_NEXT and swap (incompatible header). */
  readonly create: 'none' | 'create' | 'swap';
  readonly maxelem: number;
  readonly add: readonly (readonly [string, string])[];
  readonly del: readonly string[];
  /** Destroy the set once nothing references it (flush). */
  readonly destroy: boolean;
}

export interface RouteChange {
  readonly replace: readonly DesiredRoute[];
  readonly remove: readonly IpRoute[];
}

export interface RuleChange {
  readonly add: readonly DesiredRule[];
  readonly remove: readonly IpRule[];
}

export interface ChangeSet {
  readonly netfilter: readonly NetfilterTableChange[];
  readonly set: SetChange;
  readonly routes: RouteChange;
  readonly rules: RuleChange;
  readonly sysctls: Readonly<Record<string, string>>;
  /** Rules of other software inside our priority range: left alone, reported. */
  readonly conflicts: readonly string[];
}
