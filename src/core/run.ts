// One reconcile computation, pure: observation + assignments + neighbours in,
// uplink views, updated assignments, desired state and the shared changes
// out. The netfilter part of the desired state is an intent the backend turns
// into its own payload (backend.plan). The daemon applies the result;
// `dispatcher plan` only prints it.

import type { Config } from '../model/config.js';
import type { Neighbour, RoutingState } from '../model/kernel.js';
import type { DesiredState, RoutingChange } from '../model/plan.js';
import type { ClientRecord, LastSeen, OwnedRanges, UplinkView } from '../model/state.js';
import { countByUplink, updateAssignments, type AssignResult } from './assign.js';
import { trafficStrategy } from './balance/traffic.js';
import { clientFilter } from './clients.js';
import { ids } from './contract.js';
import type { Family } from './family.js';
import { diffRouting, diffRoutes, diffRules } from './diff.js';
import type { HaRole } from './netfilter.js';
import { plan, planRoutes, planRules } from './plan.js';
import { LayeredMap } from './layered-map.js';

export interface PlanRunInput {
  readonly config: Config;
  /** The uplinks as this run sees them (viewUplinks, with health on top). */
  readonly uplinks: readonly UplinkView[];
  /** …and as IPv6 sees them (core/uplinks6.ts viewUplinks6 + withHealth6); absent or empty while IPv6 is off. */
  readonly uplinks6?: readonly UplinkView[];
  /** Ranges of earlier configs that may still hold our objects. */
  readonly previous?: readonly OwnedRanges[];
  /** The shared kernel state (the backend's own observation goes to backend.plan). */
  readonly observed: RoutingState;
  readonly assignments: ReadonlyMap<string, ClientRecord>;
  /** When each client was last seen (expiry). */
  readonly lastSeen: LastSeen;
  readonly neighbours: readonly Neighbour[];
  /** The neighbours are a full table read (expiry may run), not a few events. */
  readonly complete: boolean;
  readonly now: number;
  /** Bytes per second per pool recently (balance.assign: traffic); null or absent: not measured yet, the counts decide. */
  readonly rates?: ReadonlyMap<string, number> | null;
  /** One of a pair: the role keepalived gave it; absent: unknown. */
  readonly role?: HaRole;
}

export interface PlanRunResult {
  readonly assignment: AssignResult;
  /** desired.netfilter is what backend.plan takes. */
  readonly desired: DesiredState;
  readonly routing: RoutingChange;
}

/**
 * One of a pair that is not master follows: its clients are the master's
 * (engine/ha-sync.ts applies them), and it neither adds, moves nor expires
 * any itself, so a takeover finds each client where the master had it.
 */
function follows(config: Config, role: HaRole | undefined): boolean {
  return config.ha !== undefined && role !== 'master';
}

export function computePlan(input: PlanRunInput): PlanRunResult {
  const { config, observed, uplinks } = input;
  const admit = clientFilter(config, observed.links);
  const present = input.neighbours.filter((n) => admit.admits(n));
  const assignment: AssignResult = follows(config, input.role) ? followed(input, present) : assign(input, present);
  const uplinks6 = input.uplinks6 ?? [];
  const desired = plan({ config, uplinks, uplinks6, assignments: assignment.assignments, ...(input.role ? { role: input.role } : {}) });
  return { assignment, desired, routing: diffRouting(config, desired, observed, input.previous) };
}

/** A follower's assignments as they are; the present clients it holds are seen now. */
function followed(input: PlanRunInput, present: readonly Neighbour[]): AssignResult {
  const seen = present.filter((n) => !n.ip.includes(':') && input.assignments.has(n.ip)).map((n) => n.ip);
  return { assignments: LayeredMap.of(input.assignments), added: [], moved: [], expired: [], updated: [], refused: [], seen, addresses6: 0 };
}

/** The clients after this run's neighbours (`present`: those the client filter admits): new ones join a pool, gone ones expire. */
function assign(input: PlanRunInput, present: readonly Neighbour[]): AssignResult {
  const { config } = input;
  return updateAssignments({
    assignments: input.assignments,
    lastSeen: input.lastSeen,
    present,
    uplinks: input.uplinks,
    now: input.now,
    complete: input.complete,
    expireMs: config.clients.expireSeconds * 1000,
    max: config.clients.max,
    perMac: config.clients.perMac,
    ...(config.balance.assign === 'traffic' && input.rates ? { strategy: trafficStrategy(input.rates, countByUplink(input.assignments)) } : {}),
  });
}

/**
 * What the probes need before the first run, on a gateway never programmed
 * before: each uplink's own table, the rule its connection mark selects (ping
 * carries the mark) and the rule its address selects (the tcp, http and dns
 * probes are bound to it). Without them a probe bound to an ethernet uplink
 * whose target has no route in main is sent "on link" and fails, a socket
 * bound to the address finds no route, and the line would be judged dead at
 * start. Only additions, and exactly the objects the first run wants, so that
 * run finds them in place; nothing of ours or anyone else's is removed.
 */
export function probePaths(config: Config, uplinks: readonly UplinkView[], observed: Pick<RoutingState, 'rules' | 'routes'>, family: Family = 'ipv4'): Pick<RoutingChange, 'rules' | 'routes'> {
  const { tables, priorities } = ids(config);
  const rules = planRules(config, uplinks, family).filter((r) => uplinks.some((u) => r.priority === priorities.conn(u.index) || r.priority === priorities.source(u.index)));
  const routes = planRoutes(config, uplinks).filter((r) => uplinks.some((u) => r.table === String(tables.uplink(u.index))));
  return {
    rules: { add: diffRules([config], rules, observed.rules).change.add, remove: [] },
    routes: { replace: diffRoutes([config], routes, observed.routes, family).replace, remove: [] },
  };
}
