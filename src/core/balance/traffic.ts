// `balance.assign: traffic` and `dispatcher rebalance` (pure): load is the
// bytes per second each pool carried over the last minute (the pool counting
// rules, core/traffic.ts), against the line's weight, instead of its count of
// clients.
//
// A client that has not sent anything yet is expected to carry what the
// average client does (the measured total ÷ the clients): each new client of
// a run adds that to its line's load, so a burst of arrivals is spread rather
// than all sent to the quietest line. With nothing measured yet (a fresh
// start, an idle network) the counts decide, as in `count`.
//
// Rebalancing moves only idle clients (no connection open: nobody is
// disturbed; a moved client's next connection leaves by its new line) from
// the most to the least loaded line while that narrows the gap, and never a
// pinned one or one on a line that does not carry.

import type { ClientRecord, UplinkView } from '../../model/state.js';
import { leastLoaded, liveOrAll } from './host.js';
import type { BalanceStrategy, Candidate, Load } from './strategy.js';

/** Bytes per second per pool (uplink name): sent and received together. */
export type PoolRates = ReadonlyMap<string, number>;

function perClient(rates: PoolRates, clients: number): number {
  let total = 0;
  for (const rate of rates.values()) total += rate;
  return total / Math.max(1, clients);
}

/**
 * The traffic strategy for one run: `counts` are the clients per line when the
 * run starts; the choose() calls of the run see them grow as clients join.
 */
export function trafficStrategy(rates: PoolRates, counts: ReadonlyMap<string, number>): BalanceStrategy {
  const clients = [...counts.values()].reduce((a, b) => a + b, 0);
  const each = perClient(rates, clients);
  return {
    name: 'traffic',
    candidates: liveOrAll,
    choose(current: Load, candidates: readonly Candidate[]): Candidate {
      if (each === 0) return leastLoaded(current, candidates);
      const load = new Map(candidates.map((c) => [c.name, (rates.get(c.name) ?? 0) + each * ((current.get(c.name) ?? 0) - (counts.get(c.name) ?? 0))]));
      return leastLoaded(load, candidates);
    },
  };
}

export interface RebalanceInput {
  readonly assignments: ReadonlyMap<string, ClientRecord>;
  readonly uplinks: readonly UplinkView[];
  readonly rates: PoolRates;
  /** Clients with an open connection (conntrack): never moved. */
  readonly busy: ReadonlySet<string>;
}

export interface Move {
  readonly ip: string;
  readonly from: string;
  readonly to: string;
}

export interface RebalancePlan {
  readonly moves: readonly Move[];
  /** Each line's load ÷ weight before and after, in bytes per second (what the plan evens out). */
  readonly before: Readonly<Record<string, number>>;
  readonly after: Readonly<Record<string, number>>;
  readonly idle: number;
  readonly busy: number;
}

/**
 * Idle clients moved, one at a time, from the line with the most load ÷
 * weight to the one with the least, while the move leaves the first no
 * lighter than the second (so a move never overshoots and the plan ends);
 * each client moves at most once. Only the lines that carry take part.
 */
export function planRebalance(input: RebalanceInput): RebalancePlan {
  const lines = liveOrAll(input.uplinks).filter((c) => input.uplinks.find((u) => u.name === c.name)?.state === 'up');
  const names = new Set(lines.map((l) => l.name));
  const idle = new Map<string, string[]>(lines.map((l) => [l.name, []]));
  let idleCount = 0;
  let busyCount = 0;
  for (const [ip, record] of [...input.assignments].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!names.has(record.uplink)) continue;
    if (input.busy.has(ip)) busyCount++;
    else if (!record.pinned) {
      idle.get(record.uplink)?.push(ip);
      idleCount++;
    }
  }
  const each = perClient(input.rates, input.assignments.size);
  const load = new Map(lines.map((l) => [l.name, input.rates.get(l.name) ?? 0]));
  const per = (line: Candidate): number => (load.get(line.name) ?? 0) / line.weight;
  const snapshot = (): Record<string, number> => Object.fromEntries(lines.map((l) => [l.name, Math.round(per(l))]));
  const before = snapshot();
  const moves: Move[] = [];
  if (each > 0 && lines.length > 1) {
    for (let step = 0; step < idleCount; step++) {
      const sorted = [...lines].sort((a, b) => per(b) - per(a) || a.index - b.index);
      const heavy = sorted.find((l) => (idle.get(l.name)?.length ?? 0) > 0);
      const light = sorted[sorted.length - 1] as Candidate;
      if (!heavy || heavy === light) break;
      const heavyAfter = ((load.get(heavy.name) ?? 0) - each) / heavy.weight;
      const lightAfter = ((load.get(light.name) ?? 0) + each) / light.weight;
      if (heavyAfter < lightAfter) break;
      const ip = idle.get(heavy.name)?.shift() as string;
      load.set(heavy.name, (load.get(heavy.name) ?? 0) - each);
      load.set(light.name, (load.get(light.name) ?? 0) + each);
      moves.push({ ip, from: heavy.name, to: light.name });
    }
  }
  return { moves, before, after: snapshot(), idle: idleCount, busy: busyCount };
}
