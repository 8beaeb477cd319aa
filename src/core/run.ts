// One reconcile computation, pure: observation + assignments + neighbours in,
// uplink views, updated assignments, desired state and changes out. The daemon
// applies its result; `dispatcher plan` only prints it.

import type { Config } from '../model/config.js';
import type { KernelState, Neighbour } from '../model/kernel.js';
import type { ChangeSet, DesiredState } from '../model/plan.js';
import type { ClientRecord, OwnedRanges, UplinkView } from '../model/state.js';
import { updateAssignments, type AssignResult } from './assign.js';
import { clientFilter } from './clients.js';
import { ids } from './contract.js';
import { diff, diffRoutes, diffRules } from './diff.js';
import type { Skeleton } from './netfilter.js';
import { plan, planRoutes, planRules } from './plan.js';

export interface RunInput {
  readonly config: Config;
  /** The uplinks as this run sees them (viewUplinks, with health on top). */
  readonly uplinks: readonly UplinkView[];
  /** Ranges of earlier configs that may still hold our objects. */
  readonly previous?: readonly OwnedRanges[];
  readonly observed: KernelState;
  readonly assignments: ReadonlyMap<string, ClientRecord>;
  readonly neighbours: readonly Neighbour[];
  /** The neighbours are a full table read (expiry may run), not a few events. */
  readonly complete: boolean;
  readonly now: number;
  readonly skeleton: Skeleton;
}

export interface RunResult {
  readonly assignment: AssignResult;
  readonly desired: DesiredState;
  readonly change: ChangeSet;
}

export function computeRun(input: RunInput): RunResult {
  const { config, observed, uplinks } = input;
  const admit = clientFilter(config, observed.links);
  const assignment = updateAssignments({
    assignments: input.assignments,
    present: input.neighbours.filter((n) => admit.admits(n)),
    uplinks,
    now: input.now,
    complete: input.complete,
    expireMs: config.clients.expireSeconds * 1000,
    max: config.clients.max,
    perMac: config.clients.perMac,
  });
  const desired = plan({ config, uplinks, assignments: assignment.assignments, skeleton: input.skeleton });
  const change = diff(config, desired, observed, input.previous);
  return { assignment, desired, change };
}

/**
 * What the probes need before the first run, on a gateway never programmed
 * before: each uplink's own table and the rule its connection mark selects.
 * Without them a probe bound to an ethernet uplink whose target has no route
 * in main is sent "on link" and fails, and the line would be judged dead at
 * start. Only additions, and exactly the objects the first run wants, so that
 * run finds them in place; nothing of ours or anyone else's is removed.
 */
export function probePaths(config: Config, uplinks: readonly UplinkView[], observed: Pick<KernelState, 'rules' | 'routes'>): Pick<ChangeSet, 'rules' | 'routes'> {
  const { tables, priorities } = ids(config);
  const rules = planRules(config, uplinks).filter((r) => uplinks.some((u) => r.priority === priorities.conn(u.index)));
  const routes = planRoutes(config, uplinks).filter((r) => uplinks.some((u) => r.table === String(tables.uplink(u.index))));
  return {
    rules: { add: diffRules([config], rules, observed.rules).change.add, remove: [] },
    routes: { replace: diffRoutes([config], routes, observed.routes).replace, remove: [] },
  };
}
