// The iptables + ipset backend's own data: what it observes (iptables-save,
// ipset save), what it wants (our chains filled from iptables/skeleton.rules,
// the client set), the change between the two and the payload text loaded by
// ipset restore and iptables-restore. Nothing outside src/backends/iptables/
// needs these, except the transitional wrappers listed in its index.ts.

import type { IpsetDump, IptTable } from '../../model/kernel.js';

export interface IptablesObserved {
  /** iptables-save of the tables we use that exist (plain iptables-save lists only existing ones). */
  readonly netfilter: readonly IptTable[];
  /** ipset save of our sets only (may be empty). */
  readonly sets: IpsetDump;
}

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
  /** Client address → its pool mark; the skbmark is "mark/poolMask" as ipset prints it. */
  readonly entries: ReadonlyMap<string, number>;
  readonly poolMask: number;
}

/** A policy's source or destination networks (hash:net): dispatcher-pN-src, -dst. */
export type PolicySetKind = 'src' | 'dst';
export const POLICY_SET_PREFIX = 'dispatcher-p';
/** Ours: a policy's set, or the twin it is rebuilt in and swapped with. */
export const POLICY_SET = /^dispatcher-p[0-9]+-(src|dst)(-next)?$/;

export interface DesiredPolicySet {
  readonly name: string;
  readonly type: 'hash:net';
  /** Networks "a.b.c.d/n". */
  readonly members: readonly string[];
}

export interface DesiredIptables {
  readonly tables: readonly DesiredNetfilterTable[];
  /** null: the client set must not exist (flush). */
  readonly set: DesiredSet | null;
  readonly policySets: readonly DesiredPolicySet[];
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
  /** [address, skbmark text] */
  readonly add: readonly (readonly [string, string])[];
  readonly del: readonly string[];
  /** Destroy the set once nothing references it (flush). */
  readonly destroy: boolean;
}

export interface PolicySetsChange {
  /** Sets to create and fill (absent ones), or to build under NAME-next and swap in (changed ones); leftover twins are destroyed first. */
  readonly load: readonly { readonly set: DesiredPolicySet; readonly how: 'create' | 'swap' }[];
  readonly destroyStale: readonly string[];
  /** Sets no policy uses any more: destroyed after iptables no longer references them. */
  readonly destroy: readonly string[];
}

export interface IptablesChange {
  readonly netfilter: readonly NetfilterTableChange[];
  readonly set: SetChange;
  readonly policySets: PolicySetsChange;
}

export interface IptablesPayload {
  /** ipset restore text run before iptables (creates, adds, deletes): sets must exist to be referenced. */
  readonly ipsetBefore: string;
  /** iptables-restore --noflush text: one transaction for every table we touch. */
  readonly iptables: string;
  /** ipset restore text run after iptables (destroying a set nothing references any more). */
  readonly ipsetAfter: string;
}
