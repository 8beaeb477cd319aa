// Each uplink as IPv6 sees it (lan.ipv6.mode nat or prefix): the same line,
// pool and state as its IPv4 view, with its IPv6 next hop and address. The next hop is
// the configured one, else nothing on a point-to-point link (ppp routes by
// device), else the uplink's IPv6 default route outside our tables — what
// the kernel installs from the ISP router's advertisements (accept_ra=2,
// which the dispatcher sets on every uplink while IPv6 is on). A line with
// none cannot carry IPv6: it is down for IPv6 alone, and its pool's IPv6
// leaves by the lines that can.

import type { Config } from '../model/config.js';
import type { FamilyRouting, Link } from '../model/kernel.js';
import type { HealthVerdict, UplinkView } from '../model/state.js';
import { gatewayAddress6 } from './announce.js';
import { isOurTable } from './contract.js';
import { parseIpv6 } from './address.js';
import { inIpv6Prefix, isUniqueLocal6, translate6 } from './ipv6.js';

function discoverGateway6(config: Config, link: Link, routes: FamilyRouting['routes']): string | undefined {
  for (const route of routes) {
    if (route.dst !== 'default' || isOurTable(config, route.table)) continue;
    const hop = route.nexthops.find((h) => h.dev === link.name && h.gateway !== undefined);
    if (hop?.gateway) return hop.gateway;
  }
  return undefined;
}

/** The gateway's own address in the LAN's IPv6 prefix (on the first LAN interface that has one), or null. */
export function lanAddress6(config: Config, links: readonly Link[]): string | null {
  const prefix = config.lan.ipv6.prefix;
  if (prefix === null) return null;
  for (const name of config.lan.interfaces) {
    const address = links.find((l) => l.name === name)?.addresses6.find((a) => inIpv6Prefix(prefix, a));
    if (address !== undefined) return address;
  }
  return null;
}

/** Prefix mode: the gateway's own address in the line's announced prefix, once it is on the LAN interface (usable: not tentative), or null. */
function announcedAddress(config: Config, prefix: string | null, links: readonly Link[]): string | null {
  if (prefix === null) return null;
  const address = gatewayAddress6(prefix);
  return config.lan.interfaces.some((name) => links.find((l) => l.name === name)?.addresses6.includes(address)) ? address : null;
}

/** The IPv6 views of the uplinks (from their link-level views), in config order; empty while IPv6 is off. */
export function viewUplinks6(config: Config, uplinks: readonly UplinkView[], links: readonly Link[], routing6: FamilyRouting): UplinkView[] {
  if (config.lan.ipv6.mode === 'off') return [];
  const lan = lanAddress6(config, links);
  return uplinks.map((view) => {
    const { gateway: _, gatewaySource: __, address: ___, ...line } = view;
    const link = links.find((l) => l.name === view.interface);
    const configured = config.uplinks[view.index]?.ipv6?.gateway ?? null;
    const address = link?.addresses6[0];
    const gateway = configured ?? (link && !view.pointToPoint ? discoverGateway6(config, link, routing6.routes) : undefined);
    const prefix = config.uplinks[view.index]?.ipv6?.prefix ?? null;
    // A line that masquerades is reached at its own address: a global one, as a unique local one is no use outside.
    const own = link?.addresses6.find((a) => !isUniqueLocal6(parseIpv6(a) as bigint)) ?? null;
    const inbound = config.lan.ipv6.mode === 'prefix' ? announcedAddress(config, prefix, links) : prefix !== null ? (lan === null ? null : translate6(lan, prefix)) : own;
    const v6: UplinkView = {
      ...line,
      ...(address !== undefined ? { address } : {}),
      ...(inbound !== null ? { inbound } : {}),
      ...(gateway !== undefined ? { gateway, gatewaySource: configured !== null ? ('config' as const) : ('route' as const) } : {}),
    };
    if (view.state === 'down' || gateway !== undefined || view.pointToPoint) return v6;
    return { ...v6, state: 'down', reason: `no IPv6 next hop: set uplinks[${view.index}].ipv6.gateway, or let ${view.interface} learn a default route from router advertisements` };
  });
}

/**
 * The IPv6 views judged: a line whose IPv6 is probed (uplinks[].ipv6.probe)
 * by its own verdict once it has one, the others by their line's verdict and
 * weight (`uplinks`: the IPv4 views with health). Link-level trouble,
 * including no IPv6 next hop, stays the reason.
 */
export function withHealth6(views6: readonly UplinkView[], verdicts6: ReadonlyMap<string, HealthVerdict>, uplinks: readonly UplinkView[]): UplinkView[] {
  return views6.map((view) => {
    if (view.state === 'down') return view;
    const line = uplinks.find((u) => u.name === view.name);
    const own = verdicts6.get(view.name);
    const weight = line?.weight ?? view.weight;
    if (own && own.state !== 'unknown') return { ...view, weight, state: own.state, reason: own.state === 'up' ? view.reason : `IPv6: ${own.reason}`, ownVerdict: true };
    if (!line) return view;
    const { degraded: _, ...rest } = view;
    return { ...rest, weight, state: line.state, reason: line.reason, ...(line.degraded ? { degraded: line.degraded } : {}) };
  });
}
