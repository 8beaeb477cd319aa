// Neighbour entries from `ip -4 neigh show` / `ip -6 neigh show` (the full tables) and from
// `ip monitor neigh` lines. Both are untrusted text: a line that does not have
// exactly the expected shape is counted and dropped, never guessed at.

import { parseIpv6 } from '../core/address.js';
import { isIpv4 } from '../core/ipv4.js';
import { isInterfaceName } from '../core/names.js';
import type { Neighbour } from '../model/kernel.js';
import { detached, interner } from './detached.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const ZERO_MAC = '00:00:00:00:00:00';

export interface NeighbourParse {
  readonly neighbours: Neighbour[];
  /** Lines that were not neighbour entries at all (unresolved entries are entries, just not clients yet). */
  readonly rejected: number;
}

/**
 * The whole table as `ip -4 neigh show` prints it (a netlink dump: 0.15 s for
 * 50,000 entries here, where reading /proc/net/arp took 0.9 s of kernel time
 * because its seq_file walks the hash again for every page). The lines have
 * the same shape as the monitor's, so one line parser serves both.
 */
export function parseNeighbourTable(text: string): NeighbourParse {
  const neighbours: Neighbour[] = [];
  let rejected = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = parseLine(line);
    if (parsed === NOT_AN_ENTRY) rejected++;
    else if (parsed) neighbours.push(parsed);
  }
  return { neighbours, rejected };
}

/** States in which the kernel holds a usable link-layer address for the neighbour. */
const RESOLVED_STATES = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);
const NOT_AN_ENTRY = Symbol('not an entry');
/** A LAN has a few interfaces: one string each, not one per line. */
const interfaceName = interner();

/**
 * One line of `ip monitor neigh` (text; iproute2 6.1 has no JSON monitor), e.g.
 *   198.18.0.10 dev lan0 lladdr 02:00:00:00:00:0a REACHABLE
 * Returns the neighbour when the line announces a resolved entry, null for
 * deletions (idle entries are garbage-collected; the client table keeps its
 * own expiry), unresolved states and anything unreadable.
 */
export function parseNeighbourEvent(line: string): Neighbour | null {
  const parsed = parseLine(line);
  return parsed === NOT_AN_ENTRY ? null : parsed;
}

/** An entry line of either family: the resolved neighbour, null when unresolved, NOT_AN_ENTRY for anything else. */
function parseLine(line: string): Neighbour | null | typeof NOT_AN_ENTRY {
  const tokens = line.trim().split(/\s+/);
  const [ip, devKeyword, dev] = tokens;
  if (ip === undefined || !(isIpv4(ip) || (ip.includes(':') && parseIpv6(ip) !== null)) || devKeyword !== 'dev' || dev === undefined || !isInterfaceName(dev)) return NOT_AN_ENTRY;
  const lladdrAt = tokens.indexOf('lladdr');
  if (lladdrAt < 3) return null;
  const mac = tokens[lladdrAt + 1]?.toLowerCase();
  if (mac === undefined || !MAC.test(mac) || mac === ZERO_MAC) return null;
  if (!tokens.slice(lladdrAt + 2).some((state) => RESOLVED_STATES.has(state))) return null;
  // Kept in the clients' records and map keys for as long as the client stays: never a view into the output.
  return { ip: detached(ip), mac: detached(mac), dev: interfaceName(dev), complete: true };
}
