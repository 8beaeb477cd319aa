// A host's IPv6 addresses join its pool (lan.ipv6.mode nat). A host is known
// by its IPv4 client record; an IPv6 neighbour with the same MAC on the same
// LAN interface is one of that host's addresses, so both families leave by
// one line (sites that compare them see one network). Temporary addresses
// rotate: each address keeps its own "last seen", and a full scan drops those
// absent longer than clients.expire, as for clients; a host keeps at most
// IPV6_PER_HOST, the most recently seen. A record whose MAC changes (another
// device took the IPv4 address) loses the old device's IPv6 addresses
// (core/assign.ts). A host with no IPv4 record (IPv6 only) is not pooled: its
// connections are spread by the multipath route, each kept on its line by the
// connection mark.

import type { Neighbour } from '../model/kernel.js';
import type { ClientRecord } from '../model/state.js';

/**
 * The most IPv6 addresses a host keeps in its pool: its stable ones and the
 * temporary ones that rotate (a new one a day, each valid a week: about 8).
 * A host that has them all learns a new one at the next scan, which keeps the
 * most recently seen (ties by address, so the same set scan after scan); its
 * events are no news meanwhile (core/clients.ts), so a host with more active
 * addresses than this cannot make the daemon churn.
 */
export const IPV6_PER_HOST = 16;

interface JoinInput {
  readonly now: number;
  /** `present` is the whole neighbour table: addresses absent longer than expireMs are dropped. */
  readonly complete: boolean;
  readonly expireMs: number;
}

/** Lookups over one assignments map: which record holds an IPv6 address, which host a MAC on an interface is. */
interface HostIndex {
  readonly holders: ReadonlyMap<string, ClientRecord>;
  /** "mac dev" → the host's IPv4 address (the lowest when a MAC has several). */
  readonly hosts: ReadonlyMap<string, string>;
}

/** Built once per assignments map (a run's map is not changed once the run is over). */
const indexes = new WeakMap<ReadonlyMap<string, ClientRecord>, HostIndex>();

function indexOf(assignments: ReadonlyMap<string, ClientRecord>): HostIndex {
  let index = indexes.get(assignments);
  if (index === undefined) {
    const holders = new Map<string, ClientRecord>();
    const hosts = new Map<string, string>();
    for (const [ip, record] of assignments) {
      if (record.ipv6) for (const held of Object.keys(record.ipv6)) holders.set(held, record);
      const key = hostKey(record.mac, record.interface);
      const held = hosts.get(key);
      if (held === undefined || compareIpv4Text(ip, held) < 0) hosts.set(key, ip);
    }
    indexes.set(assignments, (index = { holders, hosts }));
  }
  return index;
}

const hostKey = (mac: string, dev: string): string => `${mac} ${dev}`;

/** The record whose host has this IPv6 address, if any. */
export function holderOf6(assignments: ReadonlyMap<string, ClientRecord>, address: string): ClientRecord | undefined {
  return indexOf(assignments).holders.get(address);
}

/** The host record an IPv6 neighbour with this MAC on this interface belongs to, if any. */
export function hostOf6(assignments: ReadonlyMap<string, ClientRecord>, mac: string, dev: string): ClientRecord | undefined {
  const ip = indexOf(assignments).hosts.get(hostKey(mac, dev));
  return ip === undefined ? undefined : assignments.get(ip);
}

function compareIpv4Text(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** The newest IPV6_PER_HOST of a host's addresses (ties by address). */
function capped(addresses: Record<string, number>): Record<string, number> {
  const entries = Object.entries(addresses);
  if (entries.length <= IPV6_PER_HOST) return addresses;
  return Object.fromEntries(entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, IPV6_PER_HOST));
}

/**
 * Puts each present IPv6 neighbour into its host's record, and on a full scan
 * drops the addresses gone longer than expireMs: the records to write into
 * `assignments` (its next version), and how many addresses joined or left a
 * host. `changedHosts`, when given, gets each host (its IPv4 address) whose
 * set of addresses changed.
 */
export function joinIpv6(
  assignments: ReadonlyMap<string, ClientRecord>,
  present6: readonly Neighbour[],
  input: JoinInput,
  changedHosts?: string[],
): { readonly changes: number; readonly records: ReadonlyMap<string, ClientRecord> } {
  const updated = new Map<string, Record<string, number>>();
  const current = (ip: string, record: ClientRecord): Record<string, number> => {
    let addresses = updated.get(ip);
    if (addresses === undefined) updated.set(ip, (addresses = { ...record.ipv6 }));
    return addresses;
  };
  if (present6.length > 0) {
    const { hosts } = indexOf(assignments);
    // An address moves with its MAC: it leaves whichever host held it before.
    const holder = new Map<string, string>();
    for (const [ip, record] of assignments) if (record.ipv6) for (const address of Object.keys(record.ipv6)) holder.set(address, ip);
    for (const neighbour of present6) {
      const ip = hosts.get(hostKey(neighbour.mac, neighbour.dev));
      const record = ip === undefined ? undefined : assignments.get(ip);
      const before = holder.get(neighbour.ip);
      if (before !== undefined && before !== ip) {
        const previous = current(before, assignments.get(before) as ClientRecord);
        delete previous[neighbour.ip];
      }
      if (ip === undefined || record === undefined) continue;
      current(ip, record)[neighbour.ip] = input.now;
      holder.set(neighbour.ip, ip);
    }
  }
  if (input.complete && input.expireMs > 0) {
    const seen = new Set(present6.map((n) => n.ip));
    for (const [ip, record] of assignments) {
      if (record.ipv6 === undefined) continue;
      for (const [address, lastSeen] of Object.entries(updated.get(ip) ?? record.ipv6)) {
        if (seen.has(address) || input.now - lastSeen <= input.expireMs) continue;
        delete current(ip, record)[address];
      }
    }
  }
  // What changed is counted by the sets of addresses, before and after: a refreshed "last seen" is no change, nor an address the cap drops again.
  let changes = 0;
  const records = new Map<string, ClientRecord>();
  for (const [ip, addresses] of updated) {
    const record = assignments.get(ip) as ClientRecord;
    const kept = capped(addresses);
    const before = record.ipv6 ?? {};
    const counted = changes;
    for (const address of Object.keys(kept)) if (before[address] === undefined) changes++;
    for (const address of Object.keys(before)) if (kept[address] === undefined) changes++;
    if (changes > counted) changedHosts?.push(ip);
    const { ipv6: _, ...rest } = record;
    records.set(ip, Object.keys(kept).length > 0 ? { ...rest, ipv6: kept } : rest);
  }
  return { changes, records };
}
