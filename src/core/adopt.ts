// Assignments the kernel holds but the store does not (pure). The loop
// applies before it persists, so a crash (kill -9, power) between the two
// leaves clients in the kernel's client set that the store never heard of;
// a lost or corrupt store loses them all. Their pool mark says which uplink
// they were given: they are adopted with it, so a restart never moves them.
// The store wins where both know a client (it is written after the kernel).

import type { Config } from '../model/config.js';
import type { IpsetDump } from '../model/kernel.js';
import type { ClientRecord } from '../model/state.js';
import { CLIENT_SET } from './contract.js';
import { inLanSubnets } from './clients.js';
import { isUnicastHost, parseIpv4 } from './ipv4.js';
import { hex, markLayout, poolMark } from './marks.js';

export interface Adoption {
  readonly assignments: Map<string, ClientRecord>;
  readonly adopted: readonly { ip: string; uplink: string }[];
  /** Set members not adopted: a mark naming no configured uplink (the mask or the uplinks changed meanwhile), an address off the LAN, or clients.max reached. */
  readonly unreadable: number;
}

export function adoptFromClientSet(config: Config, sets: IpsetDump, assignments: ReadonlyMap<string, ClientRecord>, now: number): Adoption {
  const layout = markLayout(config.marks.mask);
  const byMark = new Map(config.uplinks.map((u, index) => [`${hex(poolMark(layout, index))}/${hex(layout.poolMask)}`, u.name]));
  const inLan = inLanSubnets(config);
  const next = new Map(assignments);
  const adopted: { ip: string; uplink: string }[] = [];
  let unreadable = 0;
  for (const entry of sets.entries) {
    if (entry.set !== CLIENT_SET || next.has(entry.member)) continue;
    const address = parseIpv4(entry.member);
    const uplink = typeof entry.options.skbmark === 'string' ? byMark.get(entry.options.skbmark) : undefined;
    const client = address !== null && isUnicastHost(address) && inLan(address);
    if (uplink === undefined || !client || next.size >= config.clients.max) {
      unreadable++;
      continue;
    }
    // MAC and interface are filled in by the next neighbour scan.
    next.set(entry.member, { uplink, mac: '', interface: '', pinned: false, firstSeen: now, lastSeen: now });
    adopted.push({ ip: entry.member, uplink });
  }
  return { assignments: next, adopted, unreadable };
}
