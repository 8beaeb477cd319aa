// Where balancing decisions live (issue: per-destination and per-connection
// modes, tiers, traffic-aware pools). A strategy answers the two questions
// assignment asks — which uplinks may take new clients now, and which of them
// takes the next one given their load — and nothing else, so a new mode or
// weighting is a new file here, not a branch in core/assign.ts.
//
// Today there is one strategy, `host` (balance.ts): a client's every
// connection leaves by its pool's uplink, new clients go to the live uplink
// with the least clients ÷ weight. Per-destination and per-connection modes
// also change the data plane (how a packet picks among uplinks); that part
// belongs to the netfilter backends and the route planner, and reads the
// mode from the same config.

import type { UplinkView } from '../../model/state.js';

export interface Candidate {
  readonly name: string;
  readonly weight: number;
  readonly index: number;
}

/** How much each uplink carries now, by the strategy's own measure (clients today; bytes for a traffic-aware one). */
export type Load = ReadonlyMap<string, number>;

export interface BalanceStrategy {
  readonly name: string;
  /** The uplinks new clients may join now (e.g. the live ones; a tiered strategy: the live ones of the lowest tier). */
  candidates(uplinks: readonly UplinkView[]): Candidate[];
  /** The candidate the next client joins, given the load; deterministic (never timing-dependent). */
  choose(load: Load, candidates: readonly Candidate[]): Candidate;
}
