// The netfilter intent in iptables' and ipset's words (pure): our chains are
// iptables/skeleton.rules filled with the intent's marks, interfaces and
// groups; the client set maps each client to its pool mark.

import { CLIENT_SET } from '../../core/contract.js';
import { bucketBlocks, SPREAD_BUCKETS } from '../../core/balance/spread.js';
import { hex } from '../../core/marks.js';
import type { NetfilterIntent, SpreadIntent } from '../../model/plan.js';
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
      notPoolMask: hex(~intent.poolMask),
      set: CLIENT_SET,
      lans: intent.lans,
      uplinks: intent.uplinks.map((u) => ({ interface: u.interface, connMark: hex(u.connMark), poolMark: hex(u.poolMark), group: String(u.group) })),
      spread: intent.spread && spreadValues(intent.spread),
    }),
    // The intent's map is used as it is: no copy per run, whatever the number of clients.
    set: { name: CLIENT_SET, maxelem: intent.maxClients, entries: intent.clients, poolMask: intent.poolMask },
  };
}

/** HMARK's options as iptables-save prints them: the addresses whole (destination mode), or the ports and protocol too. */
const TUPLES: Record<SpreadIntent['mode'], string> = {
  destination: '--hmark-src-prefix 32 --hmark-dst-prefix 32',
  connection: '--hmark-src-prefix 32 --hmark-dst-prefix 32 --hmark-sport-mask 0xffff --hmark-dport-mask 0xffff --hmark-proto-mask 0xffff',
};

/**
 * HMARK leaves this plus the bucket as the whole mark: bit 31 is always in the
 * connection field (the upper half of the mask's bits), never in a pool mark,
 * so a block's match (bit 31 and the bucket, every other bit 0) cannot match
 * again once a pool mark is set, whatever marks.mask is.
 */
const HMARK_OFFSET = 0x80000000;
const BUCKET_BITS = SPREAD_BUCKETS - 1;

function spreadValues(spread: SpreadIntent) {
  return {
    tuple: TUPLES[spread.mode],
    seed: hex(spread.seed),
    buckets: String(spread.buckets),
    // iptables-save prints the offset in decimal.
    offset: String(HMARK_OFFSET),
    blocks: spread.ranges.flatMap((range) => bucketBlocks(range.from, range.to).map((b) => ({ value: hex(HMARK_OFFSET | b.value), mask: hex(~BUCKET_BITS | b.mask), poolMark: hex(range.poolMark) }))),
  };
}

/** The change between the intent (null: nothing of ours) and what iptables-save and ipset showed. */
export function planIptablesChange(skeleton: Skeleton, intent: NetfilterIntent | null, observed: IptablesObserved): IptablesChange {
  return diffIptables(desiredIptables(skeleton, intent), observed);
}
