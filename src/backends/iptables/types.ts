// The iptables + ipset backend's own data: what it observes (iptables-save,
// ip6tables-save, ipset save), what it wants (our chains filled from
// iptables/skeleton.rules once per family, the client sets), the change
// between the two and the payload text loaded by ipset restore,
// iptables-restore and ip6tables-restore. Nothing outside
// src/backends/iptables/ needs these, except the transitional wrappers listed
// in its index.ts.

import type { Family } from '../../core/family.js';
import type { IpsetDump, IptTable } from '../../model/kernel.js';

export interface IptablesObserved {
  /** iptables-save of the tables we use that exist (plain iptables-save lists only existing ones). */
  readonly netfilter: readonly IptTable[];
  /**
   * ip6tables-save of the same tables: read whatever the config says, so that
   * ours are removed when IPv6 is turned off. null: it could not be read (no
   * ip6tables, a kernel without IPv6): an IPv4-only gateway works on, one
   * that wants IPv6 fails its runs with the reason.
   */
  readonly netfilter6: readonly IptTable[] | null;
  /** Why ip6tables-save could not be read (its own words), when netfilter6 is null. */
  readonly netfilter6Error?: string;
  /** ipset save of our sets only (may be empty). */
  readonly sets: IpsetDump;
  /**
   * iptables-save said "(nf_tables)" for every family it printed: our rules
   * live in nf_tables, whose changes nft monitor reports. Absent or false:
   * iptables-legacy (its tables report no change), or not known.
   */
  readonly inNftables?: boolean;
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

/** A family's client set (familyContract(family).clientSet). */
export interface DesiredSet {
  readonly family: Family;
  readonly maxelem: number;
  /** Client address → its pool mark; the skbmark is "mark/poolMask" as ipset prints it. */
  readonly entries: ReadonlyMap<string, number>;
  readonly poolMask: number;
}

/** A policy's source or destination networks (hash:net): dispatcher-pN-src, -dst; -src6 its hosts' IPv6 addresses. */
export type PolicySetKind = 'src' | 'dst' | 'src6';
export const POLICY_SET_PREFIX = 'dispatcher-p';
/** Ours: a policy's set (src6: its hosts' IPv6 addresses), or the twin it is rebuilt in and swapped with. */
export const POLICY_SET = /^dispatcher-p[0-9]+-(src6?|dst)(-next)?$/;

export interface DesiredPolicySet {
  readonly name: string;
  readonly type: 'hash:net';
  readonly family: 'inet' | 'inet6';
  /** Networks "a.b.c.d/n" (or "x::y/128"). */
  readonly members: readonly string[];
}

export interface DesiredIptables {
  readonly tables: readonly DesiredNetfilterTable[];
  /** ip6tables' tables: empty while IPv6 is off (nothing of ours may remain there). */
  readonly tables6: readonly DesiredNetfilterTable[];
  /** null: the client set must not exist (flush). */
  readonly set: DesiredSet | null;
  /** null: the IPv6 client set must not exist (IPv6 off, or flush). */
  readonly set6: DesiredSet | null;
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
  /** Whose client set: its names and ipset family (familyContract). */
  readonly family: Family;
  /** Leftover sets of an interrupted swap, destroyed first. */
  readonly destroyStale: readonly string[];
  /** Create the set from scratch (absent), or build its twin (clientSetNext) and swap (incompatible header). */
  readonly create: 'none' | 'create' | 'swap';
  readonly maxelem: number;
  /** [address, skbmark text] */
  readonly add: readonly (readonly [string, string])[];
  /** A swap's entries that keep their byte counts: address → "packets N bytes N" (the clients table's bytes). */
  readonly carry: ReadonlyMap<string, string>;
  readonly del: readonly string[];
  /** Destroy the set once nothing references it (flush). */
  readonly destroy: boolean;
  /** What the set holds once the change is loaded (null: no set): the next diff against that compares only the clients changed since (diff.ts). */
  readonly leaves: SetContents | null;
}

/** A client set's members as a client map (address → pool mark), under the header its diff wanted (family, maxelem, pool mask). */
export interface SetContents {
  readonly header: string;
  readonly poolMask: number;
  readonly clients: ReadonlyMap<string, number>;
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
  readonly netfilter6: readonly NetfilterTableChange[];
  readonly set: SetChange;
  readonly set6: SetChange;
  readonly policySets: PolicySetsChange;
}

export interface IptablesPayload {
  /** ipset restore text run before iptables (creates, adds, deletes): sets must exist to be referenced. */
  readonly ipsetBefore: string;
  /** iptables-restore --noflush text: one transaction for every table we touch. */
  readonly iptables: string;
  /** ip6tables-restore --noflush text, the same for IPv6 (a transaction of its own: the tools share none). */
  readonly ip6tables: string;
  /** ipset restore text run after iptables (destroying a set nothing references any more). */
  readonly ipsetAfter: string;
}
