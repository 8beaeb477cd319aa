// Assignments the kernel holds but the store does not (pure). The loop
// applies before it persists, so a crash (kill -9, power) between the two
// leaves clients in the kernel's client set that the store never heard of;
// a lost or corrupt store loses them all. Their pool mark says which uplink
// they were given: they are adopted with it, so a restart never moves them.
// The store wins where both know a client (it is written after the kernel).

import type { Config } from '../model/config.js';
import type { ClientRecord } from '../model/state.js';
import { inLanSubnets } from './clients.js';
import { isUnicastHost, parseIpv4 } from './ipv4.js';
import { markLayout, poolMark } from './marks.js';

export interface Adoption {
  readonly assignments: Map<string, ClientRecord>;
  readonly adopted: readonly { ip: string; uplink: string }[];
  /** Set members not adopted: a mark naming no configured uplink (the mask or the uplinks changed meanwhile), an address off the LAN, or clients.max reached. */
  readonly unreadable: number;
}

/** `classified`: address → the pool mark the kernel gives it (backend.classified), under its mask. */
export function adoptFromClientSet(config: Config, classified: ReadonlyMap<string, { readonly mark: number; readonly mask: number }>, assignments: ReadonlyMap<string, ClientRecord>, now: number): Adoption {
  const layout = markLayout(config.marks.mask);
  const byMark = new Map(config.uplinks.map((u, index) => [poolMark(layout, index), u.name]));
  const inLan = inLanSubnets(config);
  const next = new Map(assignments);
  const adopted: { ip: string; uplink: string }[] = [];
  let unreadable = 0;
  for (const [member, { mark, mask }] of classified) {
    if (next.has(member)) continue;
    const address = parseIpv4(member);
    const uplink = mask === layout.poolMask ? byMark.get(mark) : undefined;
    const client = address !== null && isUnicastHost(address) && inLan(address);
    if (uplink === undefined || !client || next.size >= config.clients.max) {
      unreadable++;
      continue;
    }
    // MAC and interface are filled in by the next neighbour scan.
    next.set(member, { uplink, mac: '', interface: '', pinned: false, firstSeen: now });
    adopted.push({ ip: member, uplink });
  }
  return { assignments: next, adopted, unreadable };
}
