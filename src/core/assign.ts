// Pool assignment. A new client joins the uplink the balancing strategy
// picks (core/balance/: today the least clients ÷ weight among live
// uplinks, never depending on timing). Assignments are sticky: present
// clients keep their uplink; only an operator, expiry of an absent client, or
// the removal of its uplink from the config changes it.

import type { ClientRecord, LastSeen, UplinkView } from '../model/state.js';
import type { Neighbour } from '../model/kernel.js';
import { hostStrategy } from './balance/host.js';
import type { BalanceStrategy, Candidate } from './balance/strategy.js';
import { joinIpv6 } from './assign6.js';
import { parseIpv4 } from './ipv4.js';
import { Derivation, LayeredMap, type MapDraft } from './layered-map.js';

/** Adds `by` to `key`'s count; a count of 0 is no entry. */
function bump(counts: Map<string, number> | MapDraft<string, number>, key: string, by: number): void {
  const count = (counts.get(key) ?? 0) + by;
  if (count === 0) counts.delete(key);
  else counts.set(key, count);
}

/**
 * Clients per uplink, and addresses per MAC, of the assignments last asked
 * about, carried to their next version by the clients that changed: one new
 * client among 50,000 does not count 50,000 records again.
 */
const uplinkCounts = new Derivation<string, ClientRecord, ReadonlyMap<string, number>>(
  (assignments) => {
    const counts = new Map<string, number>();
    for (const record of assignments.values()) bump(counts, record.uplink, 1);
    return counts;
  },
  (last, ips, before, after) => {
    const counts = new Map(last);
    for (const ip of ips) {
      const was = before.get(ip);
      const now = after.get(ip);
      if (was) bump(counts, was.uplink, -1);
      if (now) bump(counts, now.uplink, 1);
    }
    return counts;
  },
);

const macCounts = new Derivation<string, ClientRecord, LayeredMap<string, number>>(
  (assignments) => {
    const counts = new Map<string, number>();
    for (const record of assignments.values()) bump(counts, record.mac, 1);
    return LayeredMap.of(counts);
  },
  (last, ips, before, after) => {
    const counts = last.draft();
    for (const ip of ips) {
      const was = before.get(ip);
      const now = after.get(ip);
      if (was) bump(counts, was.mac, -1);
      if (now) bump(counts, now.mac, 1);
    }
    return counts.done();
  },
);

/**
 * Derives now what the next run's assignment asks of these assignments (the
 * counts per uplink and per MAC), so the first client after a burst does not
 * wait while 15,000 changes are carried (engine/reconciler.ts calls it when idle).
 */
export function prepareAssignment(assignments: ReadonlyMap<string, ClientRecord>): void {
  uplinkCounts.of(assignments);
  macCounts.of(assignments);
}

/** How many clients each uplink holds. */
export function countByUplink(assignments: ReadonlyMap<string, ClientRecord>): Map<string, number> {
  return new Map(uplinkCounts.of(assignments));
}

/** When `ip` (holding `record`) was last in the neighbour table: its entry in `lastSeen`, else its firstSeen (model/state.ts LastSeen). */
export function seenAt(lastSeen: LastSeen, ip: string, record: ClientRecord): number {
  return lastSeen.get(ip) ?? record.firstSeen;
}

/** Counts of `given` (by `keyOf` a record) with what the draft of its next version changed so far. */
function countDrafted(counts: ReadonlyMap<string, number>, draft: MapDraft<string, ClientRecord>, keyOf: (record: ClientRecord) => string, only?: ReadonlySet<string>): Map<string, number> {
  const result = new Map<string, number>();
  const take = (key: string): void => {
    if (!result.has(key) && (only === undefined || only.has(key))) result.set(key, counts.get(key) ?? 0);
  };
  if (only === undefined) for (const key of counts.keys()) take(key);
  else for (const key of only) take(key);
  for (const [, was, now] of draft.changed()) {
    for (const [record, by] of [
      [was, -1],
      [now, 1],
    ] as const) {
      if (record === undefined) continue;
      const key = keyOf(record);
      take(key);
      const count = result.get(key);
      if (count !== undefined) result.set(key, count + by);
    }
  }
  return result;
}

export interface AssignInput {
  readonly assignments: ReadonlyMap<string, ClientRecord>;
  /** When each client was last seen, before this run (expiry reads it; this run's present clients are seen now). */
  readonly lastSeen: LastSeen;
  /** Clients present now (already admitted by the client filter). */
  readonly present: readonly Neighbour[];
  readonly uplinks: readonly UplinkView[];
  readonly now: number;
  /** Whether `present` is the whole neighbour table (a scan) rather than a few events. */
  readonly complete: boolean;
  /** Absent clients older than this are dropped; 0 never drops. */
  readonly expireMs: number;
  readonly max: number;
  /** Which uplinks take new clients and which one the next (core/balance/); `host` by default. */
  readonly strategy?: BalanceStrategy;
  /** Most addresses assigned for one MAC. */
  readonly perMac: number;
}

/** A new client left unassigned, and the cap that stopped it. */
export interface Refusal {
  readonly ip: string;
  readonly mac: string;
  readonly cap: 'clients.max' | 'clients.per_mac' | 'no uplink';
}

export interface AssignResult {
  /** The next version of the assignments given (the same map when nothing changed). */
  readonly assignments: LayeredMap<string, ClientRecord>;
  /** New clients and the uplink each joined. */
  readonly added: readonly { ip: string; uplink: string }[];
  /** Clients whose uplink is no longer configured, and where they went. */
  readonly moved: readonly { ip: string; from: string; uplink: string }[];
  readonly expired: readonly string[];
  /**
   * Clients whose record changed, beside the added, moved and expired ones:
   * another device took the address (its MAC or interface), IPv6 addresses
   * joined or left the host. With those three, every client the run changed
   * (a pair's master sends them to its backup: core/ha-sync.ts ClientJournal).
   */
  readonly updated: readonly string[];
  /** New clients not assigned because a cap is reached. */
  readonly refused: readonly Refusal[];
  /** The present IPv4 clients that hold an assignment after the run: seen now (model/state.ts LastSeen). */
  readonly seen: readonly string[];
  /** IPv6 addresses that joined or left a host (core/assign6.ts). */
  readonly addresses6: number;
}

/** Sorts by numeric address, parsing each address once (tens of thousands of clients per run). */
function sortedByAddress<T>(items: readonly T[], ipOf: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, key: parseIpv4(ipOf(item)) ?? 0 }))
    .sort((a, b) => a.key - b.key)
    .map(({ item }) => item);
}

export function updateAssignments(input: AssignInput): AssignResult {
  // A host's IPv6 addresses follow its IPv4 record (core/assign6.ts); only IPv4 entries are clients of their own.
  let present: Neighbour[] = input.present as Neighbour[];
  let present6: Neighbour[] = [];
  if (input.present.some((n) => n.ip.includes(':'))) {
    present = input.present.filter((n) => !n.ip.includes(':'));
    present6 = input.present.filter((n) => n.ip.includes(':'));
  }
  const result = updateIpv4({ ...input, present });
  const updated = result.updated;
  if (present6.length === 0 && !(input.complete && input.expireMs > 0)) return { ...result, updated, addresses6: 0 };
  const { changes, records } = joinIpv6(result.assignments, present6, input, updated);
  const draft = result.assignments.draft();
  for (const [ip, record] of records) draft.set(ip, record);
  return { ...result, assignments: draft.done(), updated, addresses6: changes };
}

/**
 * The IPv4 clients' assignment, written into a draft of the next version
 * (core/layered-map.ts): a scan of 50,000 present clients that changes
 * nothing returns the assignments it was given, and one new client costs a
 * version with one change, not a copy of 50,000 records.
 */
function updateIpv4(input: AssignInput): Omit<AssignResult, 'addresses6' | 'updated'> & { readonly updated: string[] } {
  const given = LayeredMap.of(input.assignments);
  const draft = given.draft();
  const configured = new Set(input.uplinks.map((u) => u.name));
  const strategy = input.strategy ?? hostStrategy;
  const candidates = strategy.candidates(input.uplinks);
  const expired: string[] = [];
  if (input.complete && input.expireMs > 0) {
    // Built only when some client is old enough: a present one was seen at the last whole read.
    let presentIps: Set<string> | null = null;
    for (const [ip, record] of given) {
      if (record.pinned || input.now - seenAt(input.lastSeen, ip, record) <= input.expireMs) continue;
      presentIps ??= new Set(input.present.map((n) => n.ip));
      if (!presentIps.has(ip)) expired.push(ip);
    }
    for (const ip of expired) draft.delete(ip);
  }
  // Counted only when someone is placed: a steady scan places no one.
  let counts: Map<string, number> | null = null;
  const place = (from: string | null): Candidate => {
    counts ??= countDrafted(uplinkCounts.of(given), draft, (record) => record.uplink);
    if (from !== null) counts.set(from, (counts.get(from) ?? 0) - 1);
    const target = strategy.choose(counts, candidates);
    counts.set(target.name, (counts.get(target.name) ?? 0) + 1);
    return target;
  };
  const moved: { ip: string; from: string; uplink: string }[] = [];
  // Looked for only when some client's uplink is gone from the config (the counts say so without reading 50,000 records).
  if (candidates.length > 0 && [...uplinkCounts.of(given).keys()].some((name) => !configured.has(name))) {
    const orphans: [string, ClientRecord][] = [];
    for (const entry of draft) if (!configured.has(entry[1].uplink)) orphans.push(entry);
    for (const [ip, record] of sortedByAddress(orphans, ([address]) => address)) {
      const target = place(record.uplink);
      draft.set(ip, { ...record, uplink: target.name, pinned: false });
      moved.push({ ip, from: record.uplink, uplink: target.name });
    }
  }
  const added: { ip: string; uplink: string }[] = [];
  const updated: string[] = [];
  // Noted in the pass that looks each one up anyway: a second pass cost 30 ms a whole read at 50,000.
  const seen: string[] = [];
  const refused: Refusal[] = [];
  const unknown: Neighbour[] = [];
  for (const neighbour of input.present) {
    const record = draft.get(neighbour.ip);
    if (record === undefined) {
      unknown.push(neighbour);
      continue;
    }
    seen.push(neighbour.ip);
    if (record.mac === neighbour.mac && record.interface === neighbour.dev) continue;
    // Another device took the address: the IPv6 addresses were the old device's.
    const { ipv6: _, ...rest } = record;
    updated.push(neighbour.ip);
    draft.set(neighbour.ip, { ...rest, mac: neighbour.mac, interface: neighbour.dev });
  }
  const fresh = sortedByAddress(unknown, (n) => n.ip);
  const perMac = fresh.length > 0 ? countDrafted(macCounts.of(given), draft, (record) => record.mac, new Set(fresh.map((n) => n.mac).filter((mac) => mac !== ''))) : new Map<string, number>();
  for (const neighbour of fresh) {
    if (draft.has(neighbour.ip)) continue; // listed twice in one scan
    const cap = candidates.length === 0 ? 'no uplink' : draft.size >= input.max ? 'clients.max' : (perMac.get(neighbour.mac) ?? 0) >= input.perMac ? 'clients.per_mac' : null;
    if (cap !== null) {
      refused.push({ ip: neighbour.ip, mac: neighbour.mac, cap });
      continue;
    }
    perMac.set(neighbour.mac, (perMac.get(neighbour.mac) ?? 0) + 1);
    const target = place(null);
    draft.set(neighbour.ip, { uplink: target.name, mac: neighbour.mac, interface: neighbour.dev, pinned: false, firstSeen: input.now });
    added.push({ ip: neighbour.ip, uplink: target.name });
    seen.push(neighbour.ip);
  }
  return { assignments: draft.done(), added, moved, expired, updated, refused, seen };
}
