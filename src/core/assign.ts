// Pool assignment. A new client joins the uplink the balancing strategy
// picks (core/balance/: today the least clients ÷ weight among live
// uplinks, never depending on timing). Assignments are sticky: present
// clients keep their uplink; only an operator, expiry of an absent client, or
// the removal of its uplink from the config changes it.

import type { ClientRecord, UplinkView } from '../model/state.js';
import type { Neighbour } from '../model/kernel.js';
import { hostStrategy } from './balance/host.js';
import type { BalanceStrategy, Candidate } from './balance/strategy.js';
import { joinIpv6 } from './assign6.js';
import { parseIpv4 } from './ipv4.js';

export function countByUplink(assignments: ReadonlyMap<string, ClientRecord>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of assignments.values()) counts.set(record.uplink, (counts.get(record.uplink) ?? 0) + 1);
  return counts;
}

/**
 * A present client's lastSeen is written again once it is this old (or a
 * tenth of the expiry, when that is shorter): a scan of 50,000 present clients
 * otherwise rewrote 50,000 records every 30 s to move a time by 30 s. An
 * absent client then expires at most this much later than `clients.expire`
 * (the check allows for it), never sooner.
 */
export const LAST_SEEN_GRAIN_MS = 60_000;

export function lastSeenGrain(expireMs: number): number {
  return expireMs > 0 ? Math.min(LAST_SEEN_GRAIN_MS, expireMs / 10) : LAST_SEEN_GRAIN_MS;
}

/** How many addresses each of `macs` holds: only those are counted (a run of new clients looks at all 50,000 records, but counts a few MACs). */
function countByMac(assignments: ReadonlyMap<string, ClientRecord>, macs: ReadonlySet<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of assignments.values()) if (macs.has(record.mac)) counts.set(record.mac, (counts.get(record.mac) ?? 0) + 1);
  return counts;
}

export interface AssignInput {
  readonly assignments: ReadonlyMap<string, ClientRecord>;
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
  readonly assignments: Map<string, ClientRecord>;
  /** New clients and the uplink each joined. */
  readonly added: readonly { ip: string; uplink: string }[];
  /** Clients whose uplink is no longer configured, and where they went. */
  readonly moved: readonly { ip: string; from: string; uplink: string }[];
  readonly expired: readonly string[];
  /**
   * Clients whose record changed in more than lastSeen, beside the added,
   * moved and expired ones: another device took the address (its MAC or
   * interface), IPv6 addresses joined or left the host. With those three,
   * every client the run changed but for lastSeen (a pair's master sends
   * them to its backup: core/ha-sync.ts ClientJournal).
   */
  readonly updated: readonly string[];
  /** New clients not assigned because a cap is reached. */
  readonly refused: readonly Refusal[];
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
  // joinIpv6 writes into the map it is given: never into the caller's.
  let assignments = result.assignments;
  if (assignments === input.assignments && (present6.length > 0 || holdsIpv6(assignments))) assignments = new Map(assignments);
  const addresses6 = joinIpv6(assignments, present6, input, updated);
  return { ...result, assignments, updated, addresses6 };
}

function holdsIpv6(assignments: ReadonlyMap<string, ClientRecord>): boolean {
  for (const record of assignments.values()) if (record.ipv6 !== undefined) return true;
  return false;
}

/**
 * The IPv4 clients' assignment. A scan of 50,000 present clients that changes
 * nothing returns the assignments it was given, not a copy: the map is copied
 * on the first change (the caller never sees its own map written).
 */
function updateIpv4(input: AssignInput): Omit<AssignResult, 'addresses6' | 'updated' | 'assignments'> & { readonly assignments: Map<string, ClientRecord>; readonly updated: string[] } {
  const given = input.assignments as Map<string, ClientRecord>;
  let copy: Map<string, ClientRecord> | null = null;
  const edit = (): Map<string, ClientRecord> => (copy ??= new Map(given));
  const current = (): ReadonlyMap<string, ClientRecord> => copy ?? given;
  const configured = new Set(input.uplinks.map((u) => u.name));
  const strategy = input.strategy ?? hostStrategy;
  const candidates = strategy.candidates(input.uplinks);
  const expired: string[] = [];
  const grain = lastSeenGrain(input.expireMs);
  if (input.complete && input.expireMs > 0) {
    // Built only when some record is old enough: a present client's lastSeen is at most `grain` old.
    let presentIps: Set<string> | null = null;
    for (const [ip, record] of given) {
      if (record.pinned || input.now - record.lastSeen <= input.expireMs + grain) continue;
      presentIps ??= new Set(input.present.map((n) => n.ip));
      if (!presentIps.has(ip)) expired.push(ip);
    }
    for (const ip of expired) edit().delete(ip);
  }
  // Counted only when someone is placed: a steady scan places no one.
  let counts: Map<string, number> | null = null;
  const place = (from: string | null): Candidate => {
    counts ??= countByUplink(current());
    if (from !== null) counts.set(from, (counts.get(from) ?? 0) - 1);
    const target = strategy.choose(counts, candidates);
    counts.set(target.name, (counts.get(target.name) ?? 0) + 1);
    return target;
  };
  const moved: { ip: string; from: string; uplink: string }[] = [];
  if (candidates.length > 0) {
    const orphans: [string, ClientRecord][] = [];
    for (const entry of current()) if (!configured.has(entry[1].uplink)) orphans.push(entry);
    for (const [ip, record] of sortedByAddress(orphans, ([address]) => address)) {
      const target = place(record.uplink);
      edit().set(ip, { ...record, uplink: target.name, pinned: false });
      moved.push({ ip, from: record.uplink, uplink: target.name });
    }
  }
  const added: { ip: string; uplink: string }[] = [];
  const updated: string[] = [];
  const refused: Refusal[] = [];
  const unknown: Neighbour[] = [];
  for (const neighbour of input.present) {
    const record = current().get(neighbour.ip);
    if (record === undefined) {
      unknown.push(neighbour);
      continue;
    }
    const same = record.mac === neighbour.mac && record.interface === neighbour.dev;
    if (same && input.now - record.lastSeen < grain && input.now >= record.lastSeen) continue;
    if (same) {
      edit().set(neighbour.ip, { ...record, lastSeen: input.now });
      continue;
    }
    // Another device took the address: the IPv6 addresses were the old device's.
    const { ipv6: _, ...rest } = record;
    updated.push(neighbour.ip);
    edit().set(neighbour.ip, { ...rest, mac: neighbour.mac, interface: neighbour.dev, lastSeen: input.now });
  }
  const fresh = sortedByAddress(unknown, (n) => n.ip);
  const perMac = fresh.length > 0 ? countByMac(current(), new Set(fresh.map((n) => n.mac).filter((mac) => mac !== ''))) : new Map<string, number>();
  for (const neighbour of fresh) {
    if (current().has(neighbour.ip)) continue; // listed twice in one scan
    const cap = candidates.length === 0 ? 'no uplink' : current().size >= input.max ? 'clients.max' : (perMac.get(neighbour.mac) ?? 0) >= input.perMac ? 'clients.per_mac' : null;
    if (cap !== null) {
      refused.push({ ip: neighbour.ip, mac: neighbour.mac, cap });
      continue;
    }
    perMac.set(neighbour.mac, (perMac.get(neighbour.mac) ?? 0) + 1);
    const target = place(null);
    edit().set(neighbour.ip, { uplink: target.name, mac: neighbour.mac, interface: neighbour.dev, pinned: false, firstSeen: input.now, lastSeen: input.now });
    added.push({ ip: neighbour.ip, uplink: target.name });
  }
  return { assignments: copy ?? given, added, moved, expired, updated, refused };
}
