// Pool assignment. A new client joins the uplink the balancing strategy
// picks (core/balance/: today the least clients ÷ weight among live
// uplinks, never depending on timing). Assignments are sticky: present
// clients keep their uplink; only an operator, expiry of an absent client, or
// the removal of its uplink from the config changes it.

import type { ClientRecord, UplinkView } from '../model/state.js';
import type { Neighbour } from '../model/kernel.js';
import { hostStrategy } from './balance/host.js';
import type { BalanceStrategy } from './balance/strategy.js';
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
  const addresses6 = present6.length > 0 || (input.complete && input.expireMs > 0) ? joinIpv6(result.assignments, present6, input, updated) : 0;
  return { ...result, updated, addresses6 };
}

function updateIpv4(input: AssignInput): Omit<AssignResult, 'addresses6' | 'updated'> & { readonly updated: string[] } {
  const next = new Map(input.assignments);
  const configured = new Set(input.uplinks.map((u) => u.name));
  const strategy = input.strategy ?? hostStrategy;
  const candidates = strategy.candidates(input.uplinks);
  const expired: string[] = [];
  const grain = lastSeenGrain(input.expireMs);
  if (input.complete && input.expireMs > 0) {
    // Built only when some record is old enough: a present client's lastSeen is at most `grain` old.
    let presentIps: Set<string> | null = null;
    for (const [ip, record] of next) {
      if (record.pinned || input.now - record.lastSeen <= input.expireMs + grain) continue;
      presentIps ??= new Set(input.present.map((n) => n.ip));
      if (!presentIps.has(ip)) {
        next.delete(ip);
        expired.push(ip);
      }
    }
  }
  const counts = countByUplink(next);
  const moved: { ip: string; from: string; uplink: string }[] = [];
  if (candidates.length > 0) {
    const orphans: [string, ClientRecord][] = [];
    for (const entry of next) if (!configured.has(entry[1].uplink)) orphans.push(entry);
    for (const [ip, record] of sortedByAddress(orphans, ([address]) => address)) {
      counts.set(record.uplink, (counts.get(record.uplink) ?? 0) - 1);
      const target = strategy.choose(counts, candidates);
      counts.set(target.name, (counts.get(target.name) ?? 0) + 1);
      next.set(ip, { ...record, uplink: target.name, pinned: false });
      moved.push({ ip, from: record.uplink, uplink: target.name });
    }
  }
  const added: { ip: string; uplink: string }[] = [];
  const updated: string[] = [];
  const refused: Refusal[] = [];
  const fresh = sortedByAddress(
    input.present.filter((n) => !next.has(n.ip)),
    (n) => n.ip,
  );
  for (const neighbour of input.present) {
    const record = next.get(neighbour.ip);
    if (record && (input.now - record.lastSeen >= grain || input.now < record.lastSeen || record.mac !== neighbour.mac || record.interface !== neighbour.dev)) {
      // Another device took the address: the IPv6 addresses were the old device's.
      const { ipv6, ...rest } = record;
      const same = record.mac === neighbour.mac && record.interface === neighbour.dev;
      if (!same) updated.push(neighbour.ip);
      next.set(neighbour.ip, { ...rest, ...(same && ipv6 ? { ipv6 } : {}), mac: neighbour.mac, interface: neighbour.dev, lastSeen: input.now });
    }
  }
  const perMac = fresh.length > 0 ? countByMac(next, new Set(fresh.map((n) => n.mac).filter((mac) => mac !== ''))) : new Map<string, number>();
  for (const neighbour of fresh) {
    if (next.has(neighbour.ip)) continue; // listed twice in one scan
    const cap = candidates.length === 0 ? 'no uplink' : next.size >= input.max ? 'clients.max' : (perMac.get(neighbour.mac) ?? 0) >= input.perMac ? 'clients.per_mac' : null;
    if (cap !== null) {
      refused.push({ ip: neighbour.ip, mac: neighbour.mac, cap });
      continue;
    }
    perMac.set(neighbour.mac, (perMac.get(neighbour.mac) ?? 0) + 1);
    const target = strategy.choose(counts, candidates);
    counts.set(target.name, (counts.get(target.name) ?? 0) + 1);
    next.set(neighbour.ip, { uplink: target.name, mac: neighbour.mac, interface: neighbour.dev, pinned: false, firstSeen: input.now, lastSeen: input.now });
    added.push({ ip: neighbour.ip, uplink: target.name });
  }
  return { assignments: next, added, moved, expired, updated, refused };
}
