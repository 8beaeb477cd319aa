// A host's IPv6 addresses join its pool (lan.ipv6.mode nat). A host is known
// by its IPv4 client record; an IPv6 neighbour with the same MAC on the same
// LAN interface is one of that host's addresses, so both families leave by
// one line (sites that compare them see one network). Temporary addresses
// rotate: each address keeps its own "last seen", and a full scan drops those
// absent longer than clients.expire, as for clients; a host keeps at most
// IPV6_PER_HOST, the most recently seen. A host with no IPv4 record (IPv6
// only) is not pooled: its connections are spread by the multipath route,
// each kept on its line by the connection mark.

import type { Neighbour } from '../model/kernel.js';
import type { ClientRecord } from '../model/state.js';

/** The most IPv6 addresses a host keeps in its pool: its stable one and the temporary ones that rotate. */
export const IPV6_PER_HOST = 8;

interface JoinInput {
  readonly now: number;
  /** `present` is the whole neighbour table: addresses absent longer than expireMs are dropped. */
  readonly complete: boolean;
  readonly expireMs: number;
}

/** Which host holds each IPv6 address, per assignments map (a run's map is never changed after it is made). */
const holders = new WeakMap<ReadonlyMap<string, ClientRecord>, ReadonlyMap<string, ClientRecord>>();

/** The record whose host has this IPv6 address, if any (built once per assignments map). */
export function holderOf6(assignments: ReadonlyMap<string, ClientRecord>, address: string): ClientRecord | undefined {
  let index = holders.get(assignments);
  if (index === undefined) {
    const built = new Map<string, ClientRecord>();
    for (const record of assignments.values()) if (record.ipv6) for (const held of Object.keys(record.ipv6)) built.set(held, record);
    holders.set(assignments, (index = built));
  }
  return index.get(address);
}

/** The records' key by "mac dev", the lowest IPv4 address first when a MAC has several. */
function hostsByMac(assignments: ReadonlyMap<string, ClientRecord>): Map<string, string> {
  const hosts = new Map<string, string>();
  for (const [ip, record] of assignments) {
    const key = `${record.mac} ${record.interface}`;
    const held = hosts.get(key);
    if (held === undefined || compareIpv4Text(ip, held) < 0) hosts.set(key, ip);
  }
  return hosts;
}

function compareIpv4Text(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** The newest IPV6_PER_HOST of a host's addresses. */
function capped(addresses: Record<string, number>): Record<string, number> {
  const entries = Object.entries(addresses);
  if (entries.length <= IPV6_PER_HOST) return addresses;
  return Object.fromEntries(entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, IPV6_PER_HOST));
}

/**
 * Puts each present IPv6 neighbour into its host's record, and on a full scan
 * drops the addresses gone longer than expireMs; changes `assignments` in
 * place and returns how many addresses joined or left a host.
 */
export function joinIpv6(assignments: Map<string, ClientRecord>, present6: readonly Neighbour[], input: JoinInput): number {
  let changes = 0;
  const updated = new Map<string, Record<string, number>>();
  const current = (ip: string, record: ClientRecord): Record<string, number> => {
    let addresses = updated.get(ip);
    if (addresses === undefined) updated.set(ip, (addresses = { ...record.ipv6 }));
    return addresses;
  };
  if (present6.length > 0) {
    const hosts = hostsByMac(assignments);
    // An address moves with its MAC: it leaves whichever host held it before.
    const holder = new Map<string, string>();
    for (const [ip, record] of assignments) if (record.ipv6) for (const address of Object.keys(record.ipv6)) holder.set(address, ip);
    for (const neighbour of present6) {
      const ip = hosts.get(`${neighbour.mac} ${neighbour.dev}`);
      const record = ip === undefined ? undefined : assignments.get(ip);
      const before = holder.get(neighbour.ip);
      if (before !== undefined && before !== ip) {
        const previous = current(before, assignments.get(before) as ClientRecord);
        delete previous[neighbour.ip];
        changes++;
      }
      if (ip === undefined || record === undefined) continue;
      const addresses = current(ip, record);
      if (addresses[neighbour.ip] === undefined) changes++;
      addresses[neighbour.ip] = input.now;
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
        changes++;
      }
    }
  }
  for (const [ip, addresses] of updated) {
    const record = assignments.get(ip) as ClientRecord;
    const kept = capped(addresses);
    changes += Object.keys(addresses).length - Object.keys(kept).length;
    const { ipv6: _, ...rest } = record;
    assignments.set(ip, Object.keys(kept).length > 0 ? { ...rest, ipv6: kept } : rest);
  }
  return changes;
}
