// One reconcile computation, pure: observation + assignments + neighbours in,
// uplink views, updated assignments, desired state and changes out. The daemon
// applies its result; `dispatcher plan` only prints it.

import type { Config } from '../model/config.js';
import type { KernelState, Neighbour } from '../model/kernel.js';
import type { ChangeSet, DesiredState } from '../model/plan.js';
import type { ClientRecord, OwnedRanges, UplinkView } from '../model/state.js';
import { updateAssignments, type AssignResult } from './assign.js';
import { clientFilter } from './clients.js';
import { diff } from './diff.js';
import type { Skeleton } from './netfilter.js';
import { plan } from './plan.js';

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
