// The nftables backend: one table of our own, inet dispatcher (render.ts),
// rebuilt whole in one `nft -f` transaction when its rules differ from what
// the run wants (a digest in the table says what was loaded; rule counts per
// chain catch what other software removed), otherwise only the client map's
// changed elements. Needs only `nft`: no iptables, no ipset.

import { changedKeys, LayeredMap } from '../../core/layered-map.js';
import { hex } from '../../core/marks.js';
import type { NetfilterIntent } from '../../model/plan.js';
import { countLines } from '../../render/payloads.js';
import type { NetfilterBackend } from '../backend.js';
import { applyNft, observeNft, observeNftReadable, readClientBytes, readNftCounters } from './adapter.js';
import { hostElement, hostSets, parsePoolChain, poolChain, renderElements, renderSkeleton, renderWhole, rulesPerChain, type SetElements, skeletonDigest, TABLE } from './render.js';
import type { NftObserved, NftPayload } from './types.js';

export type NftablesBackend = NetfilterBackend<NftObserved, NftPayload>;

const sameCounts = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
};

/** What each payload planNft made leaves, when it changes only elements (NetfilterBackend.expected). */
const leaves = new WeakMap<NftPayload, NftObserved>();

export function planNft(intent: Parameters<NftablesBackend['plan']>[0], observed: NftObserved): NftPayload {
  if (!intent) return { text: observed.table ? `delete table ${TABLE}\n` : '', whole: true };
  const skeleton = renderSkeleton(intent);
  // One chain name per pool, made once.
  const chains = new Map<number, string>();
  const chainOf = (mark: number): string => {
    let chain = chains.get(mark);
    if (chain === undefined) chains.set(mark, (chain = poolChain(mark, intent.poolMask)));
    return chain;
  };
  // Every client's element (either family), built only where the table is compared or written whole.
  const wanted = (): Map<string, string> => {
    const elements = new Map<string, string>();
    for (const clients of intent.ipv6 ? [intent.clients, intent.ipv6.clients] : [intent.clients]) for (const [ip, mark] of clients) elements.set(ip, chainOf(mark));
    return elements;
  };
  const intact = observed.table && observed.digest === skeletonDigest(skeleton) && sameCounts(observed.rulesPerChain, rulesPerChain(skeleton));
  const hosts = hostSets(intent);
  if (!intact) return { text: renderWhole(skeleton, wanted(), observed.table, hosts, observed.counters), whole: true };
  const { remove, add } = changedElements(intent, observed, chainOf, wanted);
  // A host set's elements: as nft lists them (bare addresses), against ours ("a.b.c.d/32").
  const changes = new Map<string, SetElements>();
  for (const [name, list] of hosts) {
    const have = observed.hostSets.get(name) ?? new Set<string>();
    const want = new Set(list.map(hostElement));
    const change = { remove: [...have].filter((a) => !want.has(a)), add: [...want].filter((a) => !have.has(a)) };
    if (change.remove.length + change.add.length > 0) changes.set(name, change);
  }
  // A moved element carries the counter `observed` read. Clients move by runs that read the kernel (verdicts,
  // operator requests), so that is the count of a moment ago; a run on neighbour events alone plans from the last
  // run's view, and what it moves (an IPv6 address passing to another host) carries a count up to TRUST_MS old.
  const payload = { text: renderElements(remove, add, changes, observed.counters), whole: false };
  const after = payload.text === '' ? observed : afterElements(observed, remove, add, changes);
  leaves.set(payload, after);
  if (!intent.ipv6) loadedClients.set(after, { clients: intent.clients, poolMask: intent.poolMask });
  return payload;
}

/**
 * The client map (intent.clients, by identity) each after-state of ours
 * holds the elements of, under its pool mask (IPv4 only: the IPv6 map is
 * built afresh each run). Planning against such a state (a run on neighbour
 * events, a scheduled scan trusting it) compares only the clients changed
 * since (core/layered-map.ts): one new client among 50,000 is one comparison.
 */
const loadedClients = new WeakMap<NftObserved, { readonly clients: ReadonlyMap<string, number>; readonly poolMask: number }>();

/** The elements to delete (a moved client's too) and to add: by the clients changed since a state of ours where the lineage says which, else every element compared. */
function changedElements(intent: NetfilterIntent, observed: NftObserved, chainOf: (mark: number) => string, wanted: () => Map<string, string>): { remove: string[]; add: [string, string][] } {
  const remove: string[] = [];
  const add: [string, string][] = [];
  const loaded = intent.ipv6 ? undefined : loadedClients.get(observed);
  const ips = loaded && loaded.poolMask === intent.poolMask ? changedKeys(intent.clients, loaded.clients) : null;
  if (ips) {
    for (const ip of ips) {
      const mark = intent.clients.get(ip);
      const chain = mark === undefined ? undefined : chainOf(mark);
      const have = observed.clients.get(ip);
      if (have === chain) continue;
      if (have !== undefined) remove.push(ip);
      if (chain !== undefined) add.push([ip, chain]);
    }
    return { remove, add };
  }
  const elements = wanted();
  for (const [ip, chain] of observed.clients) if (elements.get(ip) !== chain) remove.push(ip);
  for (const entry of elements) if (observed.clients.get(entry[0]) !== entry[1]) add.push(entry);
  return { remove, add };
}

/** Our table as observe reads it once these element changes are loaded (next versions of its maps: core/layered-map.ts, a change of one client costs one entry). */
function afterElements(observed: NftObserved, remove: readonly string[], add: readonly (readonly [string, string])[], hosts: ReadonlyMap<string, SetElements>): NftObserved {
  const clients = LayeredMap.of(observed.clients).draft();
  const counters = LayeredMap.of(observed.counters).draft();
  const added = new Set(add.map(([ip]) => ip));
  for (const ip of remove) {
    clients.delete(ip);
    // A moved client's element is added back with its counter (renderElements); one that left starts afresh if it returns.
    if (!added.has(ip)) counters.delete(ip);
  }
  for (const [ip, chain] of add) clients.set(ip, chain);
  const hostSets = new Map(observed.hostSets);
  for (const [name, change] of hosts) {
    const members = new Set(hostSets.get(name) ?? []);
    for (const address of change.remove) members.delete(address);
    for (const address of change.add) members.add(address);
    hostSets.set(name, members);
  }
  return { ...observed, clients: clients.done(), counters: counters.done(), hostSets };
}

export function nftablesBackend(): NftablesBackend {
  return {
    name: 'nftables',
    // Every change to our table, and `flush ruleset`, shows in nft monitor; nothing needs a polled check.
    watch: { events: { argv: ['nft', 'monitor'], tables: [TABLE, 'ruleset'] }, check: null },
    watched: () => true,
    observe: observeNft,
    observeReadable: observeNftReadable,
    plan: planNft,
    isEmpty: (payload) => payload.text === '',
    expected: (payload) => leaves.get(payload) ?? null,
    apply: applyNft,
    describe: (payload) => (payload.text === '' ? '' : `# nft -f -\n${payload.text}`),
    size: (payload) => ({ nft: countLines(payload.text) }),
    // The table is ours whatever happens; flush deletes it, so nothing needs recording.
    created: () => [],
    async flush(runner, observed) {
      const payload = planNft(null, observed);
      await applyNft(runner, payload);
      return { chains: observed.table ? Object.keys(observed.rulesPerChain).map((c) => `${TABLE}/${c}`) : [], hooks: 0, setDestroyed: observed.table, tablesDeleted: observed.table ? [TABLE] : [], changed: payload.text !== '' };
    },
    collisions: (config, observed) =>
      observed.foreignMarks
        .filter((m) => (m.bits & config.marks.mask) >>> 0 !== 0)
        .map((m) => ({
          field: 'marks.mask',
          problem: `an nftables rule of other software in ${m.where} uses mark bits ${hex((m.bits & config.marks.mask) >>> 0)} inside marks.mask ${hex(config.marks.mask)}`,
          fix: 'choose a marks.mask whose bits that software does not use',
        })),
    counters: readNftCounters,
    clientBytes: readClientBytes,
    classified(observed) {
      const clients = new Map<string, { mark: number; mask: number }>();
      for (const [ip, chain] of observed.clients) {
        // A host's IPv6 addresses are adopted with it, from the neighbour table (core/assign6.ts).
        if (ip.includes(':')) continue;
        const mark = parsePoolChain(chain);
        if (mark) clients.set(ip, mark);
      }
      return clients;
    },
    groupMarked: (observed, group) => observed.groups.includes(group),
  };
}
