// The netfilter intent in iptables' and ipset's words (pure): our chains are
// iptables/skeleton.rules filled with the intent's marks, interfaces and
// groups; the client set maps each client to its pool mark.

import { CLIENT_SET } from '../../core/contract.js';
import { hex } from '../../core/marks.js';
import type { NetfilterIntent } from '../../model/plan.js';
import { diffIptables } from './diff.js';
import { fillSkeleton, type Skeleton } from './skeleton.js';
import type { DesiredIptables, IptablesChange, IptablesObserved } from './types.js';

/** null intent: nothing of ours remains (flush). */
export function desiredIptables(skeleton: Skeleton, intent: NetfilterIntent | null): DesiredIptables {
  if (!intent) return { tables: [], set: null };
  return {
    tables: fillSkeleton(skeleton, {
      connMask: hex(intent.connMask),
      poolMask: hex(intent.poolMask),
      set: CLIENT_SET,
      lans: intent.lans,
      uplinks: intent.uplinks.map((u) => ({ interface: u.interface, connMark: hex(u.connMark), poolMark: hex(u.poolMark), group: String(u.group) })),
    }),
    // The intent's map is used as it is: no copy per run, whatever the number of clients.
    set: { name: CLIENT_SET, maxelem: intent.maxClients, entries: intent.clients, poolMask: intent.poolMask },
  };
}

/** The change between the intent (null: nothing of ours) and what iptables-save and ipset showed. */
export function planIptablesChange(skeleton: Skeleton, intent: NetfilterIntent | null, observed: IptablesObserved): IptablesChange {
  return diffIptables(desiredIptables(skeleton, intent), observed);
}
