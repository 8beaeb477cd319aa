// Desired routing state minus kernel state = the shared changes to apply,
// whatever the netfilter backend (which diffs its own objects: src/backends/).
// Pure. Only objects the dispatcher owns (iptables/README.md) are ever
// changed or removed: rules with our protocol inside our priority block,
// routes in our tables, the sysctls we set. `flush` is the same diff against
// an empty desired state.

import type { Config } from '../model/config.js';
import type { FamilyRouting, IpRoute, IpRule, Link, Nexthop, RoutingState } from '../model/kernel.js';
import type { AddressChange, DesiredAddress, DesiredRoute, DesiredRouting, DesiredRule, DesiredState, FamilyRoutingChange, RouteChange, RoutingChange, RuleChange } from '../model/plan.js';
import type { Family } from './family.js';
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

/** A route's type as ip prints it (ours are plain unicast, or unreachable). */
const typeOf = (route: DesiredRoute | IpRoute): string => route.type ?? 'unicast';

export function routeKey(route: DesiredRoute | IpRoute): string {
  // An unreachable route leads nowhere (ip prints it on lo).
  const hops = typeOf(route) === 'unreachable' ? 'unreachable' : route.nexthops.map(hopKey).sort().join(',');
  return `${route.table} ${route.dst} ${hops}`;
}

/**
 * The metric a route we add without one gets: 0 for IPv4, 1024 for IPv6
 * (the kernel's IP6_RT_PRIO_USER). A route of ours with any other metric was
 * not added by us as it is, and goes.
 */
const KERNEL_METRIC: Readonly<Record<Family, number>> = { ipv4: 0, ipv6: 1024 };

export function diffRoutes(owners: Owners, desired: readonly DesiredRoute[], observed: readonly IpRoute[], family: Family = 'ipv4'): RouteChange {
  const ours = observed.filter((r) => owners.some((o) => isOurTable(o, r.table)));
  const metric = KERNEL_METRIC[family];
  const replace: DesiredRoute[] = [];
  for (const route of desired) {
    const matching = ours.filter((r) => r.table === route.table && r.dst === route.dst && (r.metric ?? 0) === metric);
    const exact = matching.some((r) => r.type === typeOf(route) && r.protocol === String(ROUTE_PROTOCOL) && routeKey(r) === routeKey(route));
    if (!exact) replace.push(route);
  }
  const wanted = new Set(desired.map((r) => `${r.table} ${r.dst}`));
  // Same table, destination and metric is replaced in place; anything else of ours goes.
  const remove = ours.filter((r) => !wanted.has(`${r.table} ${r.dst}`) || (r.metric ?? 0) !== metric);
  return { replace, remove };
}

export function diffSysctls(desired: Readonly<Record<string, string>>, observed: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(desired).filter(([key, value]) => observed[key] !== value));
}

/**
 * The gateway's LAN addresses: ours (by their metric, core/contract.ts
 * ADDRESS_METRIC) that are not wanted go, the wanted ones missing come —
 * unless their interface is not there (yet), or the operator has the address
 * already (it serves as it is, and stays the operator's).
 */
export function diffAddresses(desired: readonly DesiredAddress[], links: readonly Link[]): AddressChange {
  const ours = links.flatMap((link) => link.owned6.map((address) => ({ interface: link.name, address })));
  const key = (a: DesiredAddress): string => `${a.interface} ${a.address}`;
  const have = new Set(ours.map(key));
  const wanted = new Set(desired.map(key));
  const addable = (a: DesiredAddress): boolean => {
    const link = links.find((l) => l.name === a.interface);
    return link !== undefined && !link.addresses6.includes(a.address.split('/')[0] as string);
  };
  return { add: desired.filter((a) => !have.has(key(a)) && addable(a)), remove: ours.filter((a) => !wanted.has(key(a))) };
}

/** One family's rules and routes; conflicts are said with the family's name when it is IPv6. */
function diffFamily(owners: Owners, desired: DesiredRouting, observed: FamilyRouting, family: Family): { change: FamilyRoutingChange; conflicts: string[] } {
  const rules = diffRules(owners, desired.rules, observed.rules);
  return {
    change: { routes: diffRoutes(owners, desired.routes, observed.routes, family), rules: rules.change },
    conflicts: family === 'ipv4' ? rules.conflicts : rules.conflicts.map((c) => `IPv6 ${c}`),
  };
}

/** `previous`: ranges of earlier configs that may still hold our rules and routes. */
export function diffRouting(
  config: Config,
  desired: Omit<DesiredState, 'netfilter' | 'announce'>,
  observed: Pick<RoutingState, 'rules' | 'routes' | 'ipv6' | 'sysctls' | 'links'>,
  previous: readonly OwnedRanges[] = [],
): RoutingChange {
  const owners = [config, ...previous];
  const v4 = diffFamily(owners, desired, observed, 'ipv4');
  // IPv6 off: only what we loaded ourselves (protocol 211) is removed, and other software's IPv6 rules are not ours to judge.
  const off = config.lan.ipv6.mode === 'off';
  const observed6 = off ? { rules: observed.ipv6.rules, routes: observed.ipv6.routes.filter((r) => r.protocol === String(ROUTE_PROTOCOL)) } : observed.ipv6;
  const v6 = diffFamily(owners, desired.ipv6, observed6, 'ipv6');
  return {
    ...v4.change,
    ipv6: { ...v6.change, addresses: diffAddresses(desired.ipv6.addresses, observed.links) },
    sysctls: diffSysctls(desired.sysctls, observed.sysctls),
    conflicts: off ? v4.conflicts : [...v4.conflicts, ...v6.conflicts],
  };
}

/** The desired state of a dispatcher that is not there: what `flush` diffs against. */
export const NOTHING: DesiredState = { netfilter: null, rules: [], routes: [], ipv6: { rules: [], routes: [], addresses: [] }, sysctls: {}, announce: null };

export function isFamilyEmpty(change: FamilyRoutingChange): boolean {
  return change.routes.replace.length === 0 && change.routes.remove.length === 0 && change.rules.add.length === 0 && change.rules.remove.length === 0;
}

export function isRoutingEmpty(change: RoutingChange): boolean {
  const addresses = change.ipv6.addresses.add.length + change.ipv6.addresses.remove.length;
  return isFamilyEmpty(change) && isFamilyEmpty(change.ipv6) && addresses === 0 && Object.keys(change.sysctls).length === 0;
}
