// Desired minus observed for our chains and the client sets (pure). Only what
// the dispatcher owns (iptables/README.md) is ever changed or removed:
// DISPATCHER-… chains, the jumps into them, the dispatcher-clients(6) sets
// and the policies' sets.

import { isOurChain, NETFILTER_TABLES } from '../../core/contract.js';
import { type Family, familyContract } from '../../core/family.js';
import { changedKeys } from '../../core/layered-map.js';
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
  type SetContents,
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
const setDiffs = new WeakMap<IpsetDump, WeakMap<ReadonlyMap<string, number>, { readonly header: string; readonly change: SetChange }>>();

/**
 * The readings observedAfter made: the entries of the other sets (policy
 * sets) as read, and each family's client set as its last change left it.
 * A diff against such a reading compares the client map with the one loaded,
 * by the clients changed since (the maps' lineage, core/layered-map.ts): one
 * new client among 50,000 is one comparison, not 50,000.
 */
const afterLoads = new WeakMap<IpsetDump, { readonly others: readonly IpsetEntry[]; readonly contents: Readonly<Record<Family, SetContents | null>> }>();

/** One family's client set (desired null: it must not exist). */
export function diffSet(desired: DesiredSet | null, observed: IpsetDump, family: Family): SetChange {
  if (!desired) return compareSet(desired, observed, family);
  const header = `${family} ${desired.maxelem} ${desired.poolMask}`;
  const loaded = afterLoads.get(observed)?.contents[family];
  if (loaded?.header === header) return compareLoaded(desired, loaded, observed, family);
  let byWanted = setDiffs.get(observed);
  if (!byWanted) setDiffs.set(observed, (byWanted = new WeakMap()));
  const last = byWanted.get(desired.entries);
  if (last?.header === header) return last.change;
  const change = compareSet(desired, observed, family);
  byWanted.set(desired.entries, { header, change });
  return change;
}

/** No change yet to `family`'s client set as `observed` has it. */
function unchanged(desired: DesiredSet | null, observed: IpsetDump, family: Family): SetChange {
  const { clientSetNext } = familyContract(family);
  const destroyStale = observed.sets.some((s) => s.name === clientSetNext) ? [clientSetNext] : [];
  const leaves = desired ? { header: `${family} ${desired.maxelem} ${desired.poolMask}`, poolMask: desired.poolMask, clients: desired.entries } : null;
  return { family, destroyStale, create: 'none', maxelem: desired?.maxelem ?? 0, add: [], carry: new Map(), del: [], destroy: false, leaves };
}

/** Sorted for a stable payload; only what is loaded is sorted (a steady run sorts nothing). */
const sortedMembers = (entries: [string, string][]): [string, string][] => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** Against a set as a change of ours left it: its client map, compared by the clients changed since where the lineage says which. */
function compareLoaded(desired: DesiredSet, loaded: SetContents, observed: IpsetDump, family: Family): SetChange {
  const none = unchanged(desired, observed, family);
  if (loaded.clients === desired.entries) return none;
  const skbmark = skbmarks(desired.poolMask);
  const add: [string, string][] = [];
  const del: string[] = [];
  const compare = (ip: string): void => {
    const mark = desired.entries.get(ip);
    if (mark === undefined) {
      if (loaded.clients.has(ip)) del.push(ip);
    } else if (loaded.clients.get(ip) !== mark) add.push([ip, skbmark(mark)]);
  };
  const ips = changedKeys(desired.entries, loaded.clients);
  if (ips) for (const ip of ips) compare(ip);
  else {
    for (const ip of desired.entries.keys()) compare(ip);
    for (const ip of loaded.clients.keys()) if (!desired.entries.has(ip)) del.push(ip);
  }
  return { ...none, add: sortedMembers(add), del: del.sort() };
}

function compareSet(desired: DesiredSet | null, observed: IpsetDump, family: Family): SetChange {
  const { clientSet } = familyContract(family);
  const current = observed.sets.find((s) => s.name === clientSet);
  const none = unchanged(desired, observed, family);
  if (!desired) return { ...none, destroy: current !== undefined };
  const skbmark = skbmarks(desired.poolMask);
  const all = (): [string, string][] => [...desired.entries].map(([ip, mark]) => [ip, skbmark(mark)]);
  if (!current) return { ...none, create: 'create', add: sortedMembers(all()) };
  if (!compatible(current.options, current.type, desired.maxelem, family)) return { ...none, create: 'swap', add: sortedMembers(all()), carry: carriedCounters(observed, clientSet, desired.entries) };
  const have = membersOf(observed.entries, clientSet);
  const add: [string, string][] = [];
  for (const [ip, mark] of desired.entries) {
    const text = skbmark(mark);
    if (have.get(ip) !== text) add.push([ip, text]);
  }
  const del: string[] = [];
  for (const ip of have.keys()) if (!desired.entries.has(ip)) del.push(ip);
  return { ...none, add: sortedMembers(add), del: del.sort() };
}

/**
 * What observe reads once `change` is loaded, when it changes only the client
 * sets' members (a client added, moved or gone): each client set as the
 * change leaves it (its client map), the other sets' entries as read. The
 * client sets' entries are written out only if something asks for them
 * (ipset's form: bare address, the skbmark text). null when the change does
 * more (chains, a set created or swapped, policy sets): the next run reads.
 */
export function observedAfter(observed: IptablesObserved, change: IptablesChange): IptablesObserved | null {
  const { netfilter, netfilter6, policySets } = change;
  const sets = [change.set, change.set6];
  const more = netfilter.length + netfilter6.length > 0 || sets.some((set) => set.create !== 'none' || set.destroy || set.destroyStale.length > 0);
  if (more || policySets.load.length + policySets.destroy.length + policySets.destroyStale.length > 0) return null;
  const before = afterLoads.get(observed.sets);
  if (before && sets.every((set) => sameContents(before.contents[set.family], set.leaves))) return observed;
  const clientSets = new Set(sets.map((set) => familyContract(set.family).clientSet));
  const others = before?.others ?? observed.sets.entries.filter((e) => !clientSets.has(e.set));
  const contents = { ipv4: change.set.leaves, ipv6: change.set6.leaves };
  let entries: readonly IpsetEntry[] | null = null;
  const dump: IpsetDump = {
    sets: observed.sets.sets,
    get entries() {
      return (entries ??= [...others, ...sets.flatMap((set) => membersAsRead(set.family, set.leaves))]);
    },
  };
  afterLoads.set(dump, { others, contents });
  return { ...observed, sets: dump };
}

const sameContents = (a: SetContents | null, b: SetContents | null): boolean => a === b || (a !== null && b !== null && a.header === b.header && a.clients === b.clients);

/** A client set's entries as `ipset save` prints them. */
function membersAsRead(family: Family, contents: SetContents | null): IpsetEntry[] {
  if (contents === null) return [];
  const set = familyContract(family).clientSet;
  const skbmark = skbmarks(contents.poolMask);
  return [...contents.clients].map(([member, mark]) => ({ set, member, options: { skbmark: skbmark(mark) } }));
}

/** One set's entries: for a reading observedAfter made, from the other sets' entries as read (the client sets' are not written out). */
function entriesOf(observed: IpsetDump, set: string): IpsetEntry[] {
  return (afterLoads.get(observed)?.others ?? observed.entries).filter((e) => e.set === set);
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
    const have = new Set(entriesOf(observed, set.name).map((e) => memberKey(e.member)));
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
