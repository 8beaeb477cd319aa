// The web page's clients table (pure): every client as a row, filtered by
// what the operator types (any part of the address, MAC, interface, pool or
// an IPv6 address), in address order or busiest first, and cut to one page,
// so the page gets 100 rows whether there are 50 clients or 50,000.

import type { Assignments, LastSeen } from '../model/state.js';
import { seenAt } from './assign.js';
import { parseIpv4 } from './ipv4.js';

export interface ClientRow {
  readonly ip: string;
  readonly mac: string;
  readonly interface: string;
  readonly pool: string;
  readonly pinned: boolean;
  /** Epoch ms: first seen, last seen. */
  readonly since: number;
  readonly lastSeen: number;
  readonly ipv6: readonly string[];
  /** Bytes sent and received by its addresses (the IPv6 ones only where our rules see them: lan.ipv6.mode nat); null when the kernel's counters could not be read. */
  readonly bytes: number | null;
}

/** Address order, or the most bytes first. */
export type ClientOrder = 'address' | 'bytes';

export interface ClientPage {
  /** The order the rows are in: address order when bytes were asked for but unreadable. */
  readonly order: ClientOrder;
  readonly total: number;
  readonly matched: number;
  readonly offset: number;
  readonly rows: readonly ClientRow[];
}

export const PAGE_ROWS = 100;

/**
 * The rows matching `query` (case-insensitive, empty matches all) in `order`,
 * `limit` of them from `offset`. `bytes` is each address's count from the
 * kernel (null: unreadable; the rows say so and bytes order is address order).
 */
export function clientTable(clients: Assignments, lastSeen: LastSeen, query: string, offset: number, bytes: ReadonlyMap<string, number> | null, order: ClientOrder = 'address', limit = PAGE_ROWS): ClientPage {
  const needle = query.trim().toLowerCase();
  // [the address as a number, the address, its bytes (IPv4 and IPv6 together)].
  const matched: [number, string, number][] = [];
  for (const [ip, record] of clients) {
    const v6 = Object.keys(record.ipv6 ?? {});
    if (needle === '' || ip.includes(needle) || record.mac.toLowerCase().includes(needle) || record.uplink.toLowerCase().includes(needle) || record.interface.includes(needle) || v6.some((a) => a.includes(needle))) {
      let counted = bytes?.get(ip) ?? 0;
      for (const address of v6) counted += bytes?.get(address) ?? 0;
      matched.push([parseIpv4(ip) ?? 0, ip, counted]);
    }
  }
  const used: ClientOrder = order === 'bytes' && bytes !== null ? 'bytes' : 'address';
  if (used === 'bytes') matched.sort((a, b) => b[2] - a[2] || a[0] - b[0]);
  else matched.sort((a, b) => a[0] - b[0]);
  const start = Math.max(0, Math.min(offset, Math.max(0, matched.length - 1)));
  const rows = matched.slice(start, start + limit).map(([, ip, counted]) => {
    const record = clients.get(ip);
    if (!record) throw new Error(`client ${ip} vanished while the table was read`);
    return {
      ip,
      mac: record.mac,
      interface: record.interface,
      pool: record.uplink,
      pinned: record.pinned,
      since: record.firstSeen,
      lastSeen: seenAt(lastSeen, ip, record),
      ipv6: Object.keys(record.ipv6 ?? {}),
      bytes: bytes === null ? null : counted,
    };
  });
  return { order: used, total: clients.size, matched: matched.length, offset: start, rows };
}
