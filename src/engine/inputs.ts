// One way to gather what a run plans from (DESIGN.md §1 readInputs + observe):
// the config with ppp renames applied, the kernel as it is, the neighbour
// table when a full scan is asked for, the uplinks as links, routes, leases
// and health verdicts show them, and the ranges of earlier configs that may
// still hold our objects. The daemon's runs, `dispatcher plan` and
// `dispatcher flush` all start here, so they cannot disagree about what a
// run would see (before this, `plan` left out the previous ranges and showed
// no removals after `tables.base` changed).

import { sameRanges } from '../core/contract.js';
import { withBindings, withHealth } from '../core/uplinks.js';
import { viewUplinks6, withHealth6 } from '../core/uplinks6.js';
import type { Config } from '../model/config.js';
import type { NetfilterBackend } from '../backends/backend.js';
import type { Neighbour } from '../model/kernel.js';
import type { RoutingState } from '../model/kernel.js';
import type { OwnedRanges, StoreData, UplinkView } from '../model/state.js';
import type { Runner } from '../system/exec.js';
import { observeRouting, observeRoutingReadable } from '../system/kernel.js';
import { discoverUplinks } from '../system/leases.js';
import { readNeighbours } from '../system/neighbours.js';
import type { HealthView } from './health.js';

export interface InputsRequest {
  /** Reads the netfilter side; its observation goes to backend.plan as it is. */
  readonly backend: NetfilterBackend;
  /** The config as loaded; the stored ppp bindings are applied here. */
  readonly config: Config;
  /** The store's content (bindings, last loaded ranges); null when there is none. */
  readonly stored: Readonly<Pick<StoreData, 'bindings' | 'ranges'>> | null;
  /** Read the whole neighbour table. */
  readonly scan: boolean;
  readonly now: number;
  /** Probe verdicts on top of the links; without them uplinks are judged by their links alone. */
  readonly health?: HealthView;
  /** Configs replaced in memory since the last successful run (reloads): their ranges are cleaned up too. */
  readonly replaced?: readonly OwnedRanges[];
  /**
   * The kernel as the last run left it, taken instead of reading it again (a
   * run on neighbour events alone, between full reads; a scheduled scan takes
   * the netfilter side only, routing null: engine/reconciler.ts).
   */
  readonly known?: { readonly routing: RoutingState | null; readonly netfilter: unknown };
  /**
   * Read what can be read and plan as if the rest were empty (`dispatcher
   * plan` without root); otherwise a failed read fails the run.
   */
  readonly partial?: boolean;
}

export interface RunInputs {
  /** The effective config: ppp renames applied. */
  readonly config: Config;
  /** Rules, routes, links and sysctls: the kernel state every backend shares. */
  readonly routing: RoutingState;
  /** The backend's own observation (opaque here). */
  readonly netfilter: unknown;
  /** Reads that failed in a partial gathering (named for the operator). */
  readonly unreadable: readonly string[];
  /** The neighbour table when scanned; null when not asked for, or unreadable. */
  readonly neighbours: readonly Neighbour[] | null;
  readonly uplinks: readonly UplinkView[];
  /** The uplinks as IPv6 sees them, judged (core/uplinks6.ts); empty while IPv6 is off. */
  readonly uplinks6: readonly UplinkView[];
  /** Ranges other than the config's that may hold objects of ours. */
  readonly previous: readonly OwnedRanges[];
  /** Milliseconds spent reading the kernel and the neighbour table. */
  readonly observeMs: number;
}

export async function gatherInputs(runner: Runner, request: InputsRequest): Promise<RunInputs> {
  const config = withBindings(request.config, request.stored?.bindings ?? {});
  const started = Date.now();
  const { backend, partial, known } = request;
  const readRouting = (): Promise<{ state: RoutingState; unreadable: string[] }> => (partial ? observeRoutingReadable(runner, config) : observeRouting(runner, config).then((state) => ({ state, unreadable: [] })));
  const readNetfilter = (): Promise<{ observed: unknown; unreadable: string[] }> => (partial ? backend.observeReadable(runner) : backend.observe(runner).then((observed) => ({ observed, unreadable: [] })));
  const [shared, netfilter, arp] = await Promise.all([
    known?.routing ? { state: known.routing, unreadable: [] } : readRouting(),
    known ? { observed: known.netfilter, unreadable: [] } : readNetfilter(),
    request.scan ? readNeighbourTables(runner, config).catch((error: unknown) => (partial ? null : Promise.reject(error))) : Promise.resolve(null),
  ]);
  const observeMs = Date.now() - started;
  const routing = shared.state;
  const links = await discoverUplinks(config, routing, request.now);
  // Health is judged at the time the links were read, not when the run began (its machines' clocks only move forward).
  const uplinks = request.health ? withHealth(links, request.health.observe(links, Date.now())) : links;
  const links6 = viewUplinks6(config, links, routing.links, routing.ipv6);
  const uplinks6 = withHealth6(links6, request.health?.observe6?.(links6, Date.now()) ?? new Map(), uplinks);
  return {
    config,
    routing,
    netfilter: netfilter.observed,
    unreadable: [...netfilter.unreadable, ...shared.unreadable],
    neighbours: arp,
    uplinks,
    uplinks6,
    previous: previousRanges(config, request),
    observeMs,
  };
}

/** The IPv4 neighbour table, and IPv6's in nat mode (a host's IPv6 addresses join its pool; in prefix mode their prefix decides). */
async function readNeighbourTables(runner: Runner, config: Config): Promise<Neighbour[]> {
  if (config.lan.ipv6.mode !== 'nat') return (await readNeighbours(runner)).neighbours;
  const [v4, v6] = await Promise.all([readNeighbours(runner), readNeighbours(runner, 'ipv6')]);
  return [...v4.neighbours, ...v6.neighbours];
}

/** The stored ranges (an edit while stopped) and replaced configs' ranges, when they differ from the config's own. */
function previousRanges(config: Config, request: InputsRequest): OwnedRanges[] {
  const candidates = [...(request.stored?.ranges ? [request.stored.ranges] : []), ...(request.replaced ?? [])];
  const previous: OwnedRanges[] = [];
  for (const ranges of candidates) {
    if (!sameRanges(ranges, config) && !previous.some((p) => sameRanges(p, ranges))) previous.push({ tables: { base: ranges.tables.base }, rules: { priority: ranges.rules.priority } });
  }
  return previous;
}
