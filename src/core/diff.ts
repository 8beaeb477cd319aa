// Desired routing state minus kernel state = the shared changes to apply,
// whatever the netfilter backend (which diffs its own objects: src/backends/).
// Pure. Only objects the dispatcher owns (iptables/README.md) are ever
// changed or removed: rules with our protocol inside our priority block,
// routes in our tables, the sysctls we set. `flush` is the same diff against
// an empty desired state.

import type { Config } from '../model/config.js';
import type { IpRoute, IpRule, Nexthop, RoutingState } from '../model/kernel.js';
import type { DesiredRoute, DesiredRule, DesiredState, RouteChange, RoutingChange, RuleChange } from '../model/plan.js';
import type { OwnedRanges } from '../model/state.js';
import { inOurPriorityRange, isOurTable, ROUTE_PROTOCOL } from './contract.js';
import { hex } from './marks.js';

/** Rules are compared by everything that selects and routes, in the text ip prints. */
export function ruleKey(rule: DesiredRule | IpRule): string {
  const mark = rule.fwmark === undefined ? '' : `${hex(rule.fwmark)}/${hex(rule.fwmask ?? 0xffffffff)}`;
  return [rule.priority, rule.src, mark, rule.table, rule.suppressPrefixlength ?? ''].join(' ');
}

/** Ranges we own: the current config's first, then earlier ones (reloads, edits while stopped) until their objects are gone. */
type Owners = readonly OwnedRanges[];

export function diffRules(owners: Owners, desired: readonly DesiredRule[], observed: readonly IpRule[]): { change: RuleChange; conflicts: string[] } {
  const [config] = owners as [OwnedRanges];
  const ours = observed.filter((r) => owners.some((o) => inOurPriorityRange(o, r.priority)) && r.protocol === String(ROUTE_PROTOCOL));
  const conflicts = observed
    .filter((r) => inOurPriorityRange(config, r.priority) && r.protocol !== String(ROUTE_PROTOCOL))
    .map((r) => `ip rule at priority ${r.priority} (${ruleKey(r)}) belongs to other software; move rules.priority or that rule`);
  const wanted = new Set(desired.map(ruleKey));
  const seen = new Set<string>();
  const remove: IpRule[] = [];
  for (const rule of ours) {
    const key = ruleKey(rule);
    if (!wanted.has(key) || seen.has(key) || rule.action !== undefined) remove.push(rule);
    seen.add(key);
  }
  const add = desired.filter((r) => !seen.has(ruleKey(r)));
  return { change: { add, remove }, conflicts };
}

function hopKey(hop: Nexthop): string {
  return `${hop.gateway ?? '-'} ${hop.dev} ${hop.weight} ${hop.onlink}`;
}

export function routeKey(route: DesiredRoute | IpRoute): string {
  return `${route.table} ${route.dst} ${route.nexthops.map(hopKey).sort().join(',')}`;
}

export function diffRoutes(owners: Owners, desired: readonly DesiredRoute[], observed: readonly IpRoute[]): RouteChange {
  const ours = observed.filter((r) => owners.some((o) => isOurTable(o, r.table)));
  const replace: DesiredRoute[] = [];
  for (const route of desired) {
    const matching = ours.filter((r) => r.table === route.table && r.dst === route.dst && (r.metric ?? 0) === 0);
    const exact = matching.some((r) => r.type === 'unicast' && r.protocol === String(ROUTE_PROTOCOL) && routeKey(r) === routeKey(route));
    if (!exact) replace.push(route);
  }
  const wanted = new Set(desired.map((r) => `${r.table} ${r.dst}`));
  // Same table, destination and metric is replaced in place; anything else of ours goes.
  const remove = ours.filter((r) => !wanted.has(`${r.table} ${r.dst}`) || (r.metric ?? 0) !== 0);
  return { replace, remove };
}

export function diffSysctls(desired: Readonly<Record<string, string>>, observed: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(desired).filter(([key, value]) => observed[key] !== value));
}

/** `previous`: ranges of earlier configs that may still hold our rules and routes. */
export function diffRouting(config: Config, desired: Omit<DesiredState, 'netfilter'>, observed: Pick<RoutingState, 'rules' | 'routes' | 'sysctls'>, previous: readonly OwnedRanges[] = []): RoutingChange {
  const owners = [config, ...previous];
  const rules = diffRules(owners, desired.rules, observed.rules);
  return {
    routes: diffRoutes(owners, desired.routes, observed.routes),
    rules: rules.change,
    sysctls: diffSysctls(desired.sysctls, observed.sysctls),
    conflicts: rules.conflicts,
  };
}

/** The desired state of a dispatcher that is not there: what `flush` diffs against. */
export const NOTHING: DesiredState = { netfilter: null, rules: [], routes: [], sysctls: {} };

export function isRoutingEmpty(change: RoutingChange): boolean {
  return change.routes.replace.length === 0 && change.routes.remove.length === 0 && change.rules.add.length === 0 && change.rules.remove.length === 0 && Object.keys(change.sysctls).length === 0;
}
