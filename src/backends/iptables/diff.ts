// Desired minus observed for our chains and the client sets (pure). Only what
// the dispatcher owns (iptables/README.md) is ever changed or removed:
// DISPATCHER-… chains, the jumps into them, the dispatcher-clients(6) sets
// and the policies' sets.

import { isOurChain, NETFILTER_TABLES } from '../../core/contract.js';
import { type Family, familyContract } from '../../core/family.js';
import { hex } from '../../core/marks.js';
import type { IpsetDump, IpsetEntry, IptTable } from '../../model/kernel.js';
import {
  type DesiredIptables,
  type DesiredNetfilterTable,
  type DesiredPolicySet,
  type DesiredSet,
  type IptablesChange,
  type IptablesObserved,
  type NetfilterTableChange,
  POLICY_SET,
  type PolicySetsChange,
  type SetChange,
} from './types.js';

const sameArgs = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);

function jumpsTo(args: readonly string[], chain: string): boolean {
  for (let i = 0; i < args.length - 1; i++) if ((args[i] === '-j' || args[i] === '-g') && args[i + 1] === chain) return true;
  return false;
}

export function diffNetfilter(desired: readonly DesiredNetfilterTable[], observed: readonly IptTable[]): NetfilterTableChange[] {
  const changes: NetfilterTableChange[] = [];
  for (const tableName of NETFILTER_TABLES) {
    const want = desired.find((t) => t.name === tableName);
    const have = observed.find((t) => t.name === tableName);
    const haveChains = new Set((have?.chains ?? []).map((c) => c.name));
    const haveRules = have?.rules ?? [];
    const wantChains = want?.chains ?? [];
    const writeChains: NetfilterTableChange['writeChains'][number][] = [];
    for (const chain of wantChains) {
      const rules = (want?.rules ?? []).filter((r) => r.chain === chain).map((r) => r.args);
      const current = haveRules.filter((r) => r.chain === chain).map((r) => r.args);
      if (!haveChains.has(chain) || current.length !== rules.length || current.some((args, i) => !sameArgs(args, rules[i] as readonly string[]))) {
        writeChains.push({ chain, rules });
      }
    }
    const dropChains = [...haveChains].filter((c) => isOurChain(c) && !wantChains.includes(c));
    const deleteRules: { chain: string; args: readonly string[] }[] = [];
    const addHooks: { builtin: string; chain: string }[] = [];
    for (const hook of want?.hooks ?? []) {
      const present = haveRules.filter((r) => r.chain === hook.builtin && sameArgs(r.args, ['-j', hook.chain]));
      if (present.length === 0) addHooks.push(hook);
      // A crash between two runs of an older build could leave the hook twice: keep one.
      for (const duplicate of present.slice(1)) deleteRules.push({ chain: duplicate.chain, args: duplicate.args });
    }
    for (const rule of haveRules) {
      // Our own chains are dropped, or written whole (":CHAIN" empties them first), or unchanged and so name no dropped chain.
      if (isOurChain(rule.chain)) continue;
      if (dropChains.some((c) => jumpsTo(rule.args, c))) deleteRules.push({ chain: rule.chain, args: rule.args });
    }
    if (writeChains.length + addHooks.length + deleteRules.length + dropChains.length > 0) {
      changes.push({ table: tableName, writeChains, addHooks, deleteRules, dropChains });
    }
  }
  return changes;
}

function compatible(options: Readonly<Record<string, string | true>>, type: string, maxelem: number, family: Family): boolean {
  return type === 'hash:ip' && options.family === familyContract(family).setFamily && options.counters === true && options.skbinfo === true && options.maxelem === String(maxelem);
}

/** "mark/mask" as ipset prints an skbmark; a handful of distinct marks, so each is formatted once per diff. */
function skbmarks(poolMask: number): (mark: number) => string {
  const texts = new Map<number, string>();
  return (mark) => {
    let text = texts.get(mark);
    if (text === undefined) texts.set(mark, (text = `${hex(mark)}/${hex(poolMask)}`));
    return text;
  };
}

/**
 * The byte counts of the clients a swapped-in set keeps (ipset prints them as
 * "packets N bytes N" where the old set has counters): loaded with their
 * entries, so a new capacity does not zero the clients table's bytes.
 */
function carriedCounters(observed: IpsetDump, clientSet: string, wanted: ReadonlyMap<string, number>): ReadonlyMap<string, string> {
  const carry = new Map<string, string>();
  for (const entry of observed.entries) {
    const { packets, bytes } = entry.options;
    if (entry.set === clientSet && wanted.has(entry.member) && typeof packets === 'string' && typeof bytes === 'string') carry.set(entry.member, `packets ${packets} bytes ${bytes}`);
  }
  return carry;
}

/**
 * Each set's members and their skbmark text, per list of entries read: a scan
 * that plans from what the last run left (engine/reconciler.ts) compares with
 * the same list again, and 50,000 members are not indexed again each time.
 */
const indexed = new WeakMap<readonly IpsetEntry[], Map<string, ReadonlyMap<string, string>>>();

function membersOf(entries: readonly IpsetEntry[], set: string): ReadonlyMap<string, string> {
  let sets = indexed.get(entries);
  if (!sets) indexed.set(entries, (sets = new Map()));
  let members = sets.get(set);
  if (!members) {
    const index = new Map<string, string>();
    for (const entry of entries) if (entry.set === set) index.set(entry.member, typeof entry.options.skbmark === 'string' ? entry.options.skbmark : '');
    sets.set(set, (members = index));
  }
  return members;
}

/**
 * The last diff of a client set, by the reading it was taken against and the
 * client map it wanted (both by identity: a run that plans from what the
 * last run left, with no assignment changed, passes the same two objects,
 * core/netfilter.ts). Such a run, a scheduled scan at 50,000 clients, gets it
 * back instead of comparing 50,000 members again.
 */
const setDiffs = new WeakMap<IpsetDump, WeakMap<ReadonlyMap<string, number>, { readonly key: string; readonly change: SetChange }>>();

/** One family's client set (desired null: it must not exist). */
export function diffSet(desired: DesiredSet | null, observed: IpsetDump, family: Family): SetChange {
  if (!desired) return compareSet(desired, observed, family);
  const key = `${family} ${desired.maxelem} ${desired.poolMask}`;
  let byWanted = setDiffs.get(observed);
  if (!byWanted) setDiffs.set(observed, (byWanted = new WeakMap()));
  const last = byWanted.get(desired.entries);
  if (last?.key === key) return last.change;
  const change = compareSet(desired, observed, family);
  byWanted.set(desired.entries, { key, change });
  return change;
}

function compareSet(desired: DesiredSet | null, observed: IpsetDump, family: Family): SetChange {
  const { clientSet, clientSetNext } = familyContract(family);
  const current = observed.sets.find((s) => s.name === clientSet);
  const destroyStale = observed.sets.some((s) => s.name === clientSetNext) ? [clientSetNext] : [];
  const none: SetChange = { family, destroyStale, create: 'none', maxelem: desired?.maxelem ?? 0, add: [], carry: new Map(), del: [], destroy: false };
  if (!desired) return { ...none, destroy: current !== undefined };
  const skbmark = skbmarks(desired.poolMask);
  // Sorted for a stable payload; only what is loaded is sorted (a steady run sorts nothing).
  const sorted = (entries: [string, string][]) => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const all = (): [string, string][] => [...desired.entries].map(([ip, mark]) => [ip, skbmark(mark)]);
  if (!current) return { ...none, create: 'create', add: sorted(all()) };
  if (!compatible(current.options, current.type, desired.maxelem, family)) return { ...none, create: 'swap', add: sorted(all()), carry: carriedCounters(observed, clientSet, desired.entries) };
  const have = membersOf(observed.entries, clientSet);
  const add: [string, string][] = [];
  for (const [ip, mark] of desired.entries) {
    const text = skbmark(mark);
    if (have.get(ip) !== text) add.push([ip, text]);
  }
  const del: string[] = [];
  for (const ip of have.keys()) if (!desired.entries.has(ip)) del.push(ip);
  return { ...none, add: sorted(add), del: del.sort() };
}

/**
 * What observe reads once `change` is loaded, when it changes only the client
 * sets' members (a client added, moved or gone): the members as ipset prints
 * them (bare address, the skbmark text diffSet compares). null when it
 * changes more (chains, a set created or swapped, policy sets): the next run reads.
 */
export function observedAfter(observed: IptablesObserved, change: IptablesChange): IptablesObserved | null {
  const { netfilter, netfilter6, policySets } = change;
  const sets = [change.set, change.set6];
  const more = netfilter.length + netfilter6.length > 0 || sets.some((set) => set.create !== 'none' || set.destroy || set.destroyStale.length > 0);
  if (more || policySets.load.length + policySets.destroy.length + policySets.destroyStale.length > 0) return null;
  if (sets.every((set) => set.add.length + set.del.length === 0)) return observed;
  let entries: readonly IpsetEntry[] = observed.sets.entries;
  for (const set of sets) {
    if (set.add.length + set.del.length === 0) continue;
    const name = familyContract(set.family).clientSet;
    const replaced = new Set<string>(set.del);
    for (const [member] of set.add) replaced.add(member);
    const kept = entries.filter((e) => e.set !== name || !replaced.has(e.member));
    for (const [member, skbmark] of set.add) kept.push({ set: name, member, options: { skbmark } });
    entries = kept;
  }
  return { ...observed, sets: { sets: observed.sets.sets, entries } };
}

/** A member as compared: ipset prints a host network (/32, /128) bare and MACs in upper case. */
const memberKey = (member: string): string => member.toLowerCase().replace(/\/(32|128)$/, '');

export function diffPolicySets(desired: readonly DesiredPolicySet[], observed: IpsetDump): PolicySetsChange {
  const ours = observed.sets.filter((s) => POLICY_SET.test(s.name));
  const load: PolicySetsChange['load'][number][] = [];
  for (const set of desired) {
    const current = ours.find((s) => s.name === set.name);
    if (!current) {
      load.push({ set, how: 'create' });
      continue;
    }
    const have = new Set(observed.entries.filter((e) => e.set === set.name).map((e) => memberKey(e.member)));
    const want = new Set(set.members.map(memberKey));
    const same = current.type === set.type && current.options.family === set.family && have.size === want.size && [...want].every((m) => have.has(m));
    if (!same) load.push({ set, how: 'swap' });
  }
  return {
    load,
    destroyStale: ours.filter((s) => s.name.endsWith('-next')).map((s) => s.name),
    destroy: ours.filter((s) => !s.name.endsWith('-next') && !desired.some((d) => d.name === s.name)).map((s) => s.name),
  };
}

export function diffIptables(desired: DesiredIptables, observed: IptablesObserved): IptablesChange {
  // Unreadable ip6tables holds nothing of ours that we could see: left alone while IPv6 is off; with it on,
  // planning blind would insert every hook again, so the run fails with the reason.
  if (observed.netfilter6 === null && desired.tables6.length > 0) {
    throw new Error(`ip6tables-save could not be read (${observed.netfilter6Error ?? 'no answer'}): IPv6 nat mode with the iptables backend needs ip6tables and a kernel with IPv6`);
  }
  return {
    netfilter: diffNetfilter(desired.tables, observed.netfilter),
    netfilter6: observed.netfilter6 === null ? [] : diffNetfilter(desired.tables6, observed.netfilter6),
    set: diffSet(desired.set, observed.sets, 'ipv4'),
    set6: diffSet(desired.set6, observed.sets, 'ipv6'),
    policySets: diffPolicySets(desired.policySets, observed.sets),
  };
}
