// The planner: from config, uplink views and assignments to the complete
// desired kernel state. Pure and deterministic; `dispatcher plan` prints its
// result, the reconcile loop diffs it against what the kernel has.
//
// Routing (iptables/README.md, "Policy routing"):
//   uplink table i  default via uplink i only (pinned connections, source rules, probes)
//   pool table i    uplink i while it is up; otherwise the live uplinks, weighted
//   multipath table every live uplink, weighted (the gateway, unassigned clients)
//   static table    each static route via the first live uplink of its list
//   prefix table i  IPv6 prefix mode: line i's announced prefix, by line i or refused
// When no uplink is up everything stays pointed where it was, so the first
// line to return carries traffic at once. IPv6 prefix mode adds a source rule
// per announced prefix into its prefix table, and the advertisements
// (core/announce.ts).

import type { Config } from '../model/config.js';
import type { Nexthop } from '../model/kernel.js';
import type { DesiredRoute, DesiredRule, DesiredState } from '../model/plan.js';
import type { Assignments, UplinkView } from '../model/state.js';
import { ids } from './contract.js';
import { familyContract, familySysctls, type Family } from './family.js';
import { connMark, markLayout, poolMark } from './marks.js';
import { planAddresses6, planAnnouncement, planPrefixRules, planPrefixTables } from './announce.js';
import { type HaRole, planNetfilter } from './netfilter.js';
import { firstLive, viaPools } from './balance/policies.js';
import { carrying, routable } from './uplinks.js';

export interface PlanInput {
  readonly config: Config;
  readonly uplinks: readonly UplinkView[];
  /** The uplinks as IPv6 sees them (core/uplinks6.ts); empty or absent while IPv6 is off. */
  readonly uplinks6?: readonly UplinkView[];
  readonly assignments: Assignments;
  /** One of a pair: the role keepalived gave it (absent: unknown, which holds like a backup). */
  readonly role?: HaRole;
}

function nexthopOf(uplink: UplinkView): Nexthop {
  return uplink.gateway !== undefined ? { gateway: uplink.gateway, dev: uplink.interface, weight: uplink.weight, onlink: true } : { dev: uplink.interface, weight: uplink.weight, onlink: false };
}

/** The nexthops a route over these uplinks uses; a single hop carries weight 1 as the kernel reports it. */
function spread(uplinks: readonly UplinkView[]): Nexthop[] {
  const hops = uplinks.map(nexthopOf);
  return hops.length === 1 ? [{ ...(hops[0] as Nexthop), weight: 1 }] : hops;
}

export function planRoutes(config: Config, uplinks: readonly UplinkView[]): DesiredRoute[] {
  const { tables } = ids(config);
  // The live lines of the lowest live tier carry; with no uplink up, plan as if all were: routes stay as in normal operation.
  const live = carrying(uplinks.filter(routable));
  const carries = (u: UplinkView): boolean => routable(u) && (live.length === 0 || live.includes(u));
  const carriers = uplinks.filter(carries);
  const routes: DesiredRoute[] = [];
  if (carriers.length > 0) routes.push({ table: String(tables.multipath), dst: 'default', nexthops: spread(carriers) });
  for (const uplink of uplinks) {
    if (routable(uplink)) routes.push({ table: String(tables.uplink(uplink.index)), dst: 'default', nexthops: spread([uplink]) });
    const via = carries(uplink) ? [uplink] : carriers;
    if (via.length > 0) routes.push({ table: String(tables.pool(uplink.index)), dst: 'default', nexthops: spread(via) });
  }
  // A `via` list's pool: its first live line, else the lines that carry (core/balance/policies.ts).
  for (const pool of viaPools(config)) {
    const first = firstLive(pool.via, uplinks);
    const via = first ? [first] : carriers;
    if (via.length > 0) routes.push({ table: String(tables.pool(pool.index)), dst: 'default', nexthops: spread(via) });
  }
  return routes;
}

/** IPv6's routes: the same tables as IPv4's, and in prefix mode each announced prefix's table (core/announce.ts). */
export function planRoutes6(config: Config, uplinks6: readonly UplinkView[]): DesiredRoute[] {
  return [...planRoutes(config, uplinks6), ...planPrefixTables(config, uplinks6, spread)];
}

/** Each static route via the first live uplink of its list (the first routable one when none is live). */
export function planStaticRoutes(config: Config, uplinks: readonly UplinkView[]): DesiredRoute[] {
  const byName = new Map(uplinks.map((u) => [u.name, u]));
  return config.staticRoutes.flatMap((route) => {
    const candidates = route.via.map((name) => byName.get(name)).filter((u): u is UplinkView => u !== undefined && routable(u));
    const chosen = candidates.find((u) => u.state === 'up') ?? candidates[0];
    return chosen ? [{ table: String(ids(config).tables.static), dst: route.destination, nexthops: spread([chosen]) }] : [];
  });
}

/** Both families get the same rules (IPv6's rule list is the kernel's second one); the static routes' rule only where they exist (IPv4). */
export function planRules(config: Config, uplinks: readonly UplinkView[], family: Family = 'ipv4'): DesiredRule[] {
  const { tables, priorities } = ids(config);
  const layout = markLayout(config.marks.mask);
  const rules: DesiredRule[] = [{ priority: priorities.suppressMain, src: 'all', table: 'main', suppressPrefixlength: 0 }];
  if (config.staticRoutes.length > 0 && family === 'ipv4') rules.push({ priority: priorities.static, src: 'all', table: String(tables.static) });
  for (const uplink of uplinks) {
    rules.push({ priority: priorities.conn(uplink.index), src: 'all', fwmark: connMark(layout, uplink.index), fwmask: layout.connMask, table: String(tables.uplink(uplink.index)) });
    if (uplink.address) rules.push({ priority: priorities.source(uplink.index), src: `${uplink.address}/${familyContract(family).hostPrefix}`, table: String(tables.uplink(uplink.index)) });
    rules.push({ priority: priorities.pool(uplink.index), src: 'all', fwmark: poolMark(layout, uplink.index), fwmask: layout.poolMask, table: String(tables.pool(uplink.index)) });
  }
  for (const pool of viaPools(config)) {
    rules.push({ priority: priorities.pool(pool.index), src: 'all', fwmark: poolMark(layout, pool.index), fwmask: layout.poolMask, table: String(tables.pool(pool.index)) });
  }
  rules.push({ priority: priorities.multipath, src: 'all', table: String(tables.multipath) });
  return rules;
}

/** Forwarding on, and each present uplink's setting (loose rp_filter for IPv4: replies may arrive on any uplink). */
export function planSysctls(uplinks: readonly UplinkView[], family: Family = 'ipv4'): Record<string, string> {
  return familySysctls(
    uplinks.filter((u) => u.present).map((u) => u.interface),
    family,
  );
}

export function plan(input: PlanInput): DesiredState {
  const { config, uplinks, assignments } = input;
  const uplinks6 = config.lan.ipv6.mode === 'off' ? [] : (input.uplinks6 ?? []);
  return {
    netfilter: planNetfilter(config, uplinks, assignments, uplinks6, input.role),
    rules: planRules(config, uplinks),
    routes: [...planRoutes(config, uplinks), ...planStaticRoutes(config, uplinks)],
    ipv6:
      uplinks6.length === 0
        ? { rules: [], routes: [], addresses: [] }
        : {
            rules: [...planRules(config, uplinks6, 'ipv6'), ...planPrefixRules(config)],
            routes: planRoutes6(config, uplinks6),
            addresses: planAddresses6(config),
          },
    announce: uplinks6.length === 0 ? null : planAnnouncement(config, uplinks6),
    // IPv6's accept_ra before IPv6 forwarding (core/family.ts familySysctls).
    sysctls: uplinks6.length === 0 ? planSysctls(uplinks) : { ...planSysctls(uplinks), ...planSysctls(uplinks6, 'ipv6') },
  };
}
