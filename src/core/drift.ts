// Drift: other software changing what we loaded (a firewall reload wiping our
// chains, a network manager deleting "foreign" rules, a script resetting
// ip_forward). Pure: each check compares what an event or a cheap read says
// with what the last run loaded, and says what changed, or null when the
// change was ours or does not touch ours. The engine (engine/repairs.ts)
// turns a non-null answer into a repair run at once.

import type { OwnedRanges } from '../model/state.js';
import type { Config } from '../model/config.js';
import type { Link, RoutingEvent } from '../model/kernel.js';
import type { DesiredState, RoutingChange } from '../model/plan.js';
import { inOurPriorityRange, isOurTable } from './contract.js';
import { ruleKey } from './diff.js';
import { formatCidr, maskOf, parseIpv4 } from './ipv4.js';

/** What the last successful run loaded, in the form the checks compare against. */
export interface Loaded {
  /** ruleKey of every rule we want. */
  readonly rules: ReadonlySet<string>;
  /** "table dst" of every route we want. */
  readonly routes: ReadonlySet<string>;
  readonly sysctls: Readonly<Record<string, string>>;
  /** The netfilter intent (the backend's check compares the state it reads right after the run with it). */
  readonly netfilter: DesiredState['netfilter'];
}

/**
 * Both families together: `ip monitor rule route` reports both, and a rule's
 * line does not say its family (`from all fwmark … lookup 3101` reads the same
 * in both), so a change is judged against what either family wants.
 */
export function loadedOf(desired: Pick<DesiredState, 'rules' | 'routes' | 'ipv6' | 'sysctls' | 'netfilter'>): Loaded {
  const rules = [...desired.rules, ...desired.ipv6.rules];
  const routes = [...desired.routes, ...desired.ipv6.routes];
  return {
    rules: new Set(rules.map(ruleKey)),
    routes: new Set(routes.map((r) => `${r.table} ${r.dst}`)),
    sysctls: desired.sysctls,
    netfilter: desired.netfilter,
  };
}

/**
 * Whether a routing event concerns what is ours: a rule in our priority
 * range or a route in one of our tables, of either family. Any other change
 * (a main-table route, which gateway discovery reads) makes routing read
 * again by the next run (engine/repairs.ts routingWatchedSince).
 */
export function isOurRouting(event: RoutingEvent, owned: OwnedRanges): boolean {
  const families = ['ipv4', 'ipv6'] as const;
  return event.kind === 'rule' ? families.some((f) => inOurPriorityRange(owned, event.rule.priority, f)) : families.some((f) => isOurTable(owned, event.table, f));
}

/**
 * What a routing event changed of ours behind our back: a rule or route we
 * want was deleted, or one we do not want appeared in our priority range or
 * tables. Our own changes only ever add what we want and delete what we do
 * not, so they give null (as do changes outside our ranges).
 */
export function routingDrift(event: RoutingEvent, loaded: Loaded, owned: OwnedRanges): string | null {
  if (!isOurRouting(event, owned)) return null;
  if (event.kind === 'rule') {
    const { rule } = event;
    const wanted = loaded.rules.has(ruleKey(rule));
    if (event.deleted && wanted) return `ip rule ${rule.priority} (lookup ${rule.table}) deleted`;
    if (!event.deleted && !wanted) return `ip rule ${rule.priority} (lookup ${rule.table}) added in our priority range`;
    return null;
  }
  const wanted = loaded.routes.has(`${event.table} ${event.dst}`);
  if (event.deleted && wanted) return `route ${event.dst} in table ${event.table} deleted`;
  if (!event.deleted && !wanted) return `route ${event.dst} added to our table ${event.table}`;
  return null;
}

/** The sysctls of ours that now read otherwise, e.g. "sysctl net.ipv4.ip_forward is 0 (ours: 1)". */
export function sysctlDrift(loaded: Loaded, current: Readonly<Record<string, string>>): string[] {
  return Object.entries(loaded.sysctls)
    .filter(([key, value]) => current[key] !== undefined && current[key] !== value)
    .map(([key, value]) => `sysctl ${key} is ${current[key]} (ours: ${value})`);
}

/**
 * The LAN's networks, whose connections started while our netfilter objects
 * were gone are forgotten after the repair: lan.subnets, or else the networks
 * of the LAN interfaces' addresses; and lan.ipv6.prefix in IPv6 nat mode.
 */
export function lanNetworks(config: Pick<Config, 'lan'>, links: readonly Link[]): string[] {
  // IPv6 in nat mode: the LAN's prefix, whose connections were never translated while our table was gone.
  const prefix6 = config.lan.ipv6.mode === 'nat' && config.lan.ipv6.prefix !== null ? [config.lan.ipv6.prefix] : [];
  return [...lanNetworks4(config, links), ...prefix6];
}

function lanNetworks4(config: Pick<Config, 'lan'>, links: readonly Link[]): string[] {
  if (config.lan.subnets.length > 0) return [...config.lan.subnets];
  const networks = links
    .filter((link) => config.lan.interfaces.includes(link.name))
    .flatMap((link) => link.addresses)
    .flatMap((a) => {
      const address = parseIpv4(a.local);
      return address === null ? [] : [formatCidr({ network: (address & maskOf(a.prefixlen)) >>> 0, prefix: a.prefixlen })];
    });
  return [...new Set(networks)];
}

/** What a repair run put back, in words, from the changes it loaded: sysctls by name, rules and routes by count, the backend's lines. */
export function describeRepair(routing: Pick<RoutingChange, 'rules' | 'routes' | 'ipv6' | 'sysctls'>, netfilter: Readonly<Record<string, number>>): string[] {
  const what = Object.entries(routing.sysctls).map(([key, value]) => `sysctl ${key} set to ${value}`);
  if (routing.ipv6.rules.add.length + routing.ipv6.routes.replace.length > 0) what.push(`IPv6: ${routing.ipv6.rules.add.length} ip rule(s) added, ${routing.ipv6.routes.replace.length} route(s) put back`);
  const { add, remove } = routing.ipv6.addresses;
  if (add.length + remove.length > 0) what.push(`IPv6 LAN addresses: ${[...add.map((a) => `${a.address} put back on ${a.interface}`), ...remove.map((a) => `${a.address} removed from ${a.interface}`)].join(', ')}`);
  if (routing.rules.add.length > 0) what.push(`${routing.rules.add.length} ip rule${routing.rules.add.length === 1 ? '' : 's'} added (priorities ${routing.rules.add.map((r) => r.priority).join(', ')})`);
  if (routing.rules.remove.length > 0) what.push(`${routing.rules.remove.length} ip rule${routing.rules.remove.length === 1 ? '' : 's'} of ours removed`);
  const tables = [...new Set(routing.routes.replace.map((r) => r.table))];
  if (tables.length > 0) what.push(`${routing.routes.replace.length} route${routing.routes.replace.length === 1 ? '' : 's'} put back (tables ${tables.join(', ')})`);
  if (routing.routes.remove.length > 0) what.push(`${routing.routes.remove.length} route${routing.routes.remove.length === 1 ? '' : 's'} removed from our tables`);
  for (const [tool, lines] of Object.entries(netfilter)) if (lines > 0) what.push(`${tool}: ${lines} line${lines === 1 ? '' : 's'} loaded`);
  return what;
}
