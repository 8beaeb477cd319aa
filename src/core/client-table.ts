// The web page's clients table (pure): every client as a row, filtered by
// what the operator types (any part of the address, MAC, interface, pool or
// an IPv6 address) and cut to one page, so the page gets 100 rows whether
// there are 50 clients or 50,000.

import type { Assignments } from '../model/state.js';
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
}

export interface ClientPage {
  readonly total: number;
  readonly matched: number;
  readonly offset: number;
  readonly rows: readonly ClientRow[];
}

export const PAGE_ROWS = 100;

/** The rows matching `query` (case-insensitive, empty matches all) in address order, `limit` of them from `offset`. */
export function clientTable(clients: Assignments, query: string, offset: number, limit = PAGE_ROWS): ClientPage {
  const needle = query.trim().toLowerCase();
  const matched: [number, string][] = [];
  for (const [ip, record] of clients) {
    const v6 = Object.keys(record.ipv6 ?? {});
    if (needle === '' || ip.includes(needle) || record.mac.toLowerCase().includes(needle) || record.uplink.toLowerCase().includes(needle) || record.interface.includes(needle) || v6.some((a) => a.includes(needle))) {
      matched.push([parseIpv4(ip) ?? 0, ip]);
    }
  }
  matched.sort((a, b) => a[0] - b[0]);
  const start = Math.max(0, Math.min(offset, Math.max(0, matched.length - 1)));
  const rows = matched.slice(start, start + limit).map(([, ip]) => {
    const record = clients.get(ip);
    if (!record) throw new Error(`client ${ip} vanished while the table was read`);
    return { ip, mac: record.mac, interface: record.interface, pool: record.uplink, pinned: record.pinned, since: record.firstSeen, lastSeen: record.lastSeen, ipv6: Object.keys(record.ipv6 ?? {}) };
  });
  return { total: clients.size, matched: matched.length, offset: start, rows };
}
