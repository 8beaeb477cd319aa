// Neighbour entries from /proc/net/arp and from `ip monitor neigh` lines.
// Both are untrusted text: a line that does not have exactly the expected
// shape is counted and dropped, never guessed at.

import { isIpv4 } from '../core/ipv4.js';
import { isInterfaceName } from '../core/names.js';
import type { Neighbour } from '../model/kernel.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const ZERO_MAC = '00:00:00:00:00:00';
/** ATF_COM: the entry has a resolved hardware address. */
const ATF_COM = 0x2;

export interface NeighbourParse {
  readonly neighbours: Neighbour[];
  /** Lines that were not neighbour entries (excluding the header). */
  readonly rejected: number;
}

export function parseProcNetArp(text: string): NeighbourParse {
  const neighbours: Neighbour[] = [];
  let rejected = 0;
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/);
    const [ip, hwType, flagsText, mac, , dev] = fields;
    if (fields.length !== 6 || !isIpv4(ip as string) || !/^0x[0-9a-f]+$/i.test(flagsText as string) || !/^0x[0-9a-f]+$/i.test(hwType as string)) {
      rejected++;
      continue;
    }
    const macText = (mac as string).toLowerCase();
    if (!MAC.test(macText) || !isInterfaceName(dev as string)) {
      rejected++;
      continue;
    }
    const flags = parseInt((flagsText as string).slice(2), 16);
    neighbours.push({ ip: ip as string, mac: macText, dev: dev as string, complete: (flags & ATF_COM) !== 0 && macText !== ZERO_MAC });
  }
  return { neighbours, rejected };
}

/** States in which the kernel holds a usable link-layer address for the neighbour. */
const RESOLVED_STATES = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

/**
 * One line of `ip monitor neigh` (text; iproute2 6.1 has no JSON monitor), e.g.
 *   198.18.0.10 dev lan0 lladdr 02:00:00:00:00:0a REACHABLE
 * Returns the neighbour when the line announces a resolved entry, null for
 * deletions (idle entries are garbage-collected; the client table keeps its
 * own expiry), unresolved states, other families and anything unreadable.
 */
export function parseNeighbourEvent(line: string): Neighbour | null {
  const tokens = line.trim().split(/\s+/);
  const [ip, devKeyword, dev] = tokens;
  if (ip === undefined || !isIpv4(ip) || devKeyword !== 'dev' || dev === undefined || !isInterfaceName(dev)) return null;
  const lladdrAt = tokens.indexOf('lladdr');
  if (lladdrAt < 3) return null;
  const mac = tokens[lladdrAt + 1]?.toLowerCase();
  if (mac === undefined || !MAC.test(mac) || mac === ZERO_MAC) return null;
  if (!tokens.slice(lladdrAt + 2).some((state) => RESOLVED_STATES.has(state))) return null;
  return { ip, mac, dev, complete: true };
}

