// Desired state minus kernel state = the changes to apply. Pure. Only objects
// the dispatcher owns (iptables/README.md) are ever changed or removed:
// DISPATCHER-… chains and the hooks into them, the dispatcher-clients set,
// rules with our protocol inside our priority block, routes in our tables.
// `flush` is the same diff against an empty desired state.

import type { Config } from '../model/config.js';
import type { IpRoute, IpRule, IpsetDump, IptTable, KernelState, Nexthop } from '../model/kernel.js';
import type { ChangeSet, DesiredRoute, DesiredRule, DesiredSet, DesiredState, NetfilterTableChange, RouteChange, RuleChange, SetChange } from '../model/plan.js';
import type { OwnedRanges } from '../model/state.js';
import { CLIENT_SET, CLIENT_SET_NEXT, inOurPriorityRange, isOurChain, isOurTable, NETFILTER_TABLES, ROUTE_PROTOCOL } from './contract.js';
import { hex } from './marks.js';

const sameArgs = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);

function jumpsTo(args: readonly string[], chain: string): boolean {
  for (let i = 0; i < args.length - 1; i++) if ((args[i] === '-j' || args[i] === '-g') && args[i + 1] === chain) return true;
  return false;
}

export function diffNetfilter(desired: DesiredState['netfilter'], observed: readonly IptTable[]): NetfilterTableChange[] {
  const changes: NetfilterTableChange[] = [];
  for (const tableName of NETFILTER_TABLES) {
    const want = desired.find((t) => t.name === tableName);
    const have = observed.find((t) => t.name === tableName);
    const haveChains = new Set((have?.chains ?? []).map((c) => c.name));
    const haveRules = have?.rules ?? [];
    const wantChains = want?.chains ?? [];
    const writeChains: NetfilterTableChange['writeChains'][number][] = [];
    for (const chain of wantChains) {
      const rules = (want?.rules ?? []).filter((r) => r.chain === chain).map((r) => r.args);
      const current = haveRules.filter((r) => r.chain === chain).map((r) => r.args);
      if (!haveChains.has(chain) || current.length !== rules.length || current.some((args, i) => !sameArgs(args, rules[i] as readonly string[]))) {
        writeChains.push({ chain, rules });
      }
    }
    const dropChains = [...haveChains].filter((c) => isOurChain(c) && !wantChains.includes(c));
    const deleteRules: { chain: string; args: readonly string[] }[] = [];
    const addHooks: { builtin: string; chain: string }[] = [];
    for (const hook of want?.hooks ?? []) {
      const present = haveRules.filter((r) => r.chain === hook.builtin && sameArgs(r.args, ['-j', hook.chain]));
      if (present.length === 0) addHooks.push(hook);
      // A crash between two runs of an older build could leave the hook twice: keep one.
      for (const duplicate of present.slice(1)) deleteRules.push({ chain: duplicate.chain, args: duplicate.args });
    }
    for (const rule of haveRules) {
      if (isOurChain(rule.chain) && dropChains.includes(rule.chain)) continue;
      if (dropChains.some((c) => jumpsTo(rule.args, c))) deleteRules.push({ chain: rule.chain, args: rule.args });
    }
    if (writeChains.length + addHooks.length + deleteRules.length + dropChains.length > 0) {
      changes.push({ table: tableName, writeChains, addHooks, deleteRules, dropChains });
    }
  }
  return changes;
}

function compatible(options: Readonly<Record<string, string | true>>, type: string, maxelem: number): boolean {
  return type === 'hash:ip' && options.family === 'inet' && options.skbinfo === true && options.maxelem === String(maxelem);
}

export function diffSet(desired: DesiredSet | null, observed: IpsetDump): SetChange {
  const current = observed.sets.find((s) => s.name === CLIENT_SET);
  const destroyStale = observed.sets.some((s) => s.name === CLIENT_SET_NEXT) ? [CLIENT_SET_NEXT] : [];
  const none: SetChange = { destroyStale, create: 'none', maxelem: desired?.maxelem ?? 0, add: [], del: [], destroy: false };
  if (!desired) return { ...none, destroy: current !== undefined };
  // Sorted for a stable payload; only what is loaded is sorted (a steady run sorts nothing).
  const sorted = (entries: [string, string][]) => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!current) return { ...none, create: 'create', add: sorted([...desired.entries]) };
  if (!compatible(current.options, current.type, desired.maxelem)) return { ...none, create: 'swap', add: sorted([...desired.entries]) };
  const have = new Map<string, string>();
  for (const entry of observed.entries) {
    if (entry.set === CLIENT_SET) have.set(entry.member, typeof entry.options.skbmark === 'string' ? entry.options.skbmark : '');
  }
  const add: [string, string][] = [];
  for (const entry of desired.entries) if (have.get(entry[0]) !== entry[1]) add.push(entry);
  const del: string[] = [];
  for (const ip of have.keys()) if (!desired.entries.has(ip)) del.push(ip);
  return { ...none, add: sorted(add), del: del.sort() };
}

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
export function diff(config: Config, desired: DesiredState, observed: KernelState, previous: readonly OwnedRanges[] = []): ChangeSet {
  const owners = [config, ...previous];
  const rules = diffRules(owners, desired.rules, observed.rules);
  return {
    netfilter: diffNetfilter(desired.netfilter, observed.netfilter),
    set: diffSet(desired.set, observed.sets),
    routes: diffRoutes(owners, desired.routes, observed.routes),
    rules: rules.change,
    sysctls: diffSysctls(desired.sysctls, observed.sysctls),
    conflicts: rules.conflicts,
  };
}

/** The desired state of a dispatcher that is not there: what `flush` diffs against. */
export const NOTHING: DesiredState = { netfilter: [], set: null, rules: [], routes: [], sysctls: {} };

export function isEmpty(change: ChangeSet): boolean {
  const { set } = change;
  return (
    change.netfilter.length === 0 &&
    set.destroyStale.length === 0 &&
    set.create === 'none' &&
    set.add.length === 0 &&
    set.del.length === 0 &&
    !set.destroy &&
    change.routes.replace.length === 0 &&
    change.routes.remove.length === 0 &&
    change.rules.add.length === 0 &&
    change.rules.remove.length === 0 &&
    Object.keys(change.sysctls).length === 0
  );
}
