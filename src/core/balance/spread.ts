// The `destination` and `connection` modes (pure): a new LAN connection is
// put into a pool by a hash instead of by its client's pool. The hash of the
// client–destination address pair (destination mode: every connection of a
// client to one address leaves by the same line, bank- and HTTPS-safe) or of
// the whole connection (connection mode) falls into one of SPREAD_BUCKETS
// buckets; the buckets are shared out to the main lines' pools in proportion
// to their weights, in contiguous ranges.
//
// The buckets name pools, not lines, and never change when a line dies: a
// dead line's pool table routes over the survivors (core/plan.ts), so only the
// dead line's share moves, and when it returns exactly that share comes back.
// Connections stay on the line they started on by their connection mark, as
// in host mode. The share changes only with the weights (a reload, or a line
// turning degraded), and then only for new connections.

import type { Config } from '../../model/config.js';
import type { SpreadIntent } from '../../model/plan.js';
import type { UplinkView } from '../../model/state.js';
import { markLayout, poolMark } from '../marks.js';
import { hashes } from './policies.js';

/** Hash buckets: a 64th is the finest share a line can get. A power of two, so a range is a few masked matches. */
export const SPREAD_BUCKETS = 64;
/** The hash's seed: fixed, so a destination keeps its line across restarts. */
export const SPREAD_SEED = 0x64737031;

export interface BucketRange {
  /** First bucket, inclusive. */
  readonly from: number;
  /** Last bucket, inclusive. */
  readonly to: number;
  readonly uplink: string;
}

/**
 * SPREAD_BUCKETS shared out by weight (largest remainder; ties to the earlier
 * line), every line at least one bucket (taken from the line with the most),
 * contiguous in the given order.
 */
export function apportion(lines: readonly { readonly name: string; readonly weight: number }[], buckets = SPREAD_BUCKETS): BucketRange[] {
  if (lines.length === 0) return [];
  if (lines.length > buckets) throw new RangeError(`${lines.length} lines do not fit in ${buckets} buckets`);
  const total = lines.reduce((sum, l) => sum + l.weight, 0);
  const exact = lines.map((l) => (buckets * l.weight) / total);
  const shares = exact.map(Math.floor);
  const order = exact.map((e, i) => ({ i, rest: e - Math.floor(e) })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (let left = buckets - shares.reduce((a, b) => a + b, 0), k = 0; left > 0; left--, k++) {
    const i = (order[k] as { i: number }).i;
    shares[i] = (shares[i] as number) + 1;
  }
  for (let i = 0; i < shares.length; i++) {
    if (shares[i] !== 0) continue;
    const most = shares.indexOf(Math.max(...shares));
    shares[most] = (shares[most] as number) - 1;
    shares[i] = 1;
  }
  let from = 0;
  return lines.map((line, i) => {
    const range = { from, to: from + (shares[i] as number) - 1, uplink: line.name };
    from = range.to + 1;
    return range;
  });
}

/** A range of buckets as the fewest aligned blocks: each is value/mask over the bucket bits (as a mark match reads them). */
export function bucketBlocks(from: number, to: number): { value: number; mask: number }[] {
  const blocks: { value: number; mask: number }[] = [];
  let at = from;
  while (at <= to) {
    let size = 1;
    while (at % (size * 2) === 0 && at + size * 2 - 1 <= to && size * 2 <= SPREAD_BUCKETS) size *= 2;
    blocks.push({ value: at, mask: (SPREAD_BUCKETS - 1) & ~(size - 1) });
    at += size;
  }
  return blocks;
}

/**
 * The lines that share the buckets: the main lines (the lowest tier configured),
 * with the weights the run uses (a degraded line's is lowered against the
 * healthy ones'). A higher tier is reached through the main lines' pool
 * tables when they are all down, like host mode's pools.
 */
function sharing(uplinks: readonly UplinkView[]): UplinkView[] {
  const lowest = Math.min(...uplinks.map((u) => u.tier));
  return uplinks.filter((u) => u.tier === lowest);
}

/** The buckets' pools when some connections are hashed (balance.mode or a policy's balance); null otherwise. */
export function planSpread(config: Config, uplinks: readonly UplinkView[]): SpreadIntent | null {
  if (!hashes(config) || uplinks.length === 0) return null;
  const layout = markLayout(config.marks.mask);
  const marks = new Map(uplinks.map((u) => [u.name, poolMark(layout, u.index)]));
  return {
    buckets: SPREAD_BUCKETS,
    seed: SPREAD_SEED,
    ranges: apportion(sharing(uplinks)).map((range) => ({ ...range, poolMark: marks.get(range.uplink) as number })),
  };
}
