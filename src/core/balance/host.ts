// The `host` strategy (today's behaviour): a new client joins the live
// uplink with the least load, where load = clients ÷ weight; ties go to the
// higher weight, then to config order, so the result never depends on timing.
// Only lines that carry take clients: the live ones of the lowest live tier.

import type { UplinkView } from '../../model/state.js';
import { carrying } from '../uplinks.js';
import type { BalanceStrategy, Candidate, Load } from './strategy.js';

/** The candidate with the least load ÷ weight (compared without division). */
export function leastLoaded(load: Load, candidates: readonly Candidate[]): Candidate {
  let best = candidates[0];
  if (!best) throw new RangeError('no candidate uplinks');
  for (const candidate of candidates.slice(1)) {
    const mine = (load.get(candidate.name) ?? 0) * best.weight;
    const theirs = (load.get(best.name) ?? 0) * candidate.weight;
    if (mine < theirs || (mine === theirs && (candidate.weight > best.weight || (candidate.weight === best.weight && candidate.index < best.index)))) {
      best = candidate;
    }
  }
  return best;
}

/** New clients go to the lines that carry (live, lowest tier); when none is live, to any (their pool is rerouted anyway). */
export function liveOrAll(uplinks: readonly UplinkView[]): Candidate[] {
  const live = carrying(uplinks);
  return (live.length > 0 ? live : uplinks).map(({ name, weight, index }) => ({ name, weight, index }));
}

export const hostStrategy: BalanceStrategy = { name: 'host', candidates: liveOrAll, choose: leastLoaded };
