// What each configured uplink looks like right now: does its link exist, what
// address does it have, and which next hop does it use. Gateway discovery
// order: the config, the point-to-point peer (ppp), a default route some
// other software installed on the device (DHCP clients do) outside our tables,
// and the newest current dhclient lease.

import type { Config } from '../model/config.js';
import type { IpRoute, Link } from '../model/kernel.js';
import type { HealthVerdict, UplinkView } from '../model/state.js';
import { isOurTable } from './contract.js';

function discoverGateway(config: Config, link: Link, routes: readonly IpRoute[], leased: string | undefined): Pick<UplinkView, 'gateway' | 'gatewaySource'> {
  const peer = link.addresses.find((a) => a.peer !== undefined)?.peer;
  if (peer) return { gateway: peer, gatewaySource: 'ppp-peer' };
  for (const route of routes) {
    if (route.dst !== 'default' || isOurTable(config, route.table)) continue;
    const hop = route.nexthops.find((h) => h.dev === link.name && h.gateway !== undefined);
    if (hop?.gateway) return { gateway: hop.gateway, gatewaySource: 'route' };
  }
  return leased ? { gateway: leased, gatewaySource: 'dhcp-lease' } : {};
}

/** Link-level view of every uplink, in config order. Health verdicts are layered on top (withHealth). */
export function viewUplinks(config: Config, links: readonly Link[], routes: readonly IpRoute[], leases: ReadonlyMap<string, string> = new Map()): UplinkView[] {
  return config.uplinks.map((uplink, index) => {
    const base = { name: uplink.name, index, interface: uplink.interface, weight: uplink.weight, tier: uplink.tier };
    const link = links.find((l) => l.name === uplink.interface);
    if (!link) {
      return { ...base, state: 'down', reason: `interface ${uplink.interface} does not exist`, present: false, pointToPoint: false };
    }
    const address = link.addresses[0]?.local;
    const discovered = uplink.gateway ? { gateway: uplink.gateway, gatewaySource: 'config' as const } : discoverGateway(config, link, routes, leases.get(uplink.name));
    const view = {
      ...base,
      present: link.up,
      pointToPoint: link.pointToPoint,
      ...(address ? { address } : {}),
      ...discovered,
    };
    const reason = !link.up
      ? `interface ${uplink.interface} is administratively down`
      : !link.lowerUp
        ? `interface ${uplink.interface} has no carrier`
        : !address
          ? `interface ${uplink.interface} has no IPv4 address`
          : !view.gateway && !link.pointToPoint
            ? `no gateway: set uplinks[${index}].gateway, or give ${uplink.interface} a peer address or a default route`
            : null;
    return reason === null ? { ...view, state: 'up', reason: 'link up' } : { ...view, state: 'down', reason };
  });
}

/** An uplink can carry a route when its link is up and it has a next hop (or is point-to-point). */
export function routable(uplink: UplinkView): boolean {
  return uplink.present && (uplink.gateway !== undefined || uplink.pointToPoint);
}

/** How many times a healthy line's weight counts against a degraded one's. */
export const DEGRADED_FACTOR = 4;
/** The largest weight a multipath next hop takes. */
const MAX_HOP_WEIGHT = 256;

/**
 * The probes' verdicts on top of the link-level view: a link problem stays the reason; a dead line is down.
 * While any live line is degraded, every healthy line's weight is multiplied by DEGRADED_FACTOR (as far as
 * the largest hop weight allows) and the degraded ones keep theirs: a degraded line gets about a quarter of
 * its usual share of new clients and of the multipath route, and stays in use.
 */
export function withHealth(views: readonly UplinkView[], verdicts: ReadonlyMap<string, HealthVerdict>): UplinkView[] {
  const judged = views.map((view): UplinkView => {
    const verdict = verdicts.get(view.name);
    if (view.state === 'down' || !verdict || verdict.state === 'unknown') return view;
    return { ...view, state: verdict.state, reason: verdict.reason, ...(verdict.state === 'up' && verdict.degraded ? { degraded: verdict.degraded } : {}) };
  });
  const healthy = judged.filter((v) => v.state === 'up' && !v.degraded);
  if (healthy.length === 0 || !judged.some((v) => v.state === 'up' && v.degraded)) return judged;
  const factor = Math.max(1, Math.min(DEGRADED_FACTOR, Math.floor(MAX_HOP_WEIGHT / Math.max(...healthy.map((v) => v.weight)))));
  return judged.map((v) => (healthy.includes(v) ? { ...v, weight: v.weight * factor } : v));
}

/**
 * The lines that carry traffic now: the live ones of the lowest tier that has
 * a live line. The others that are up stand by (a backup or metered line while
 * a main line works); none carries while every line is down.
 */
export function carrying<U extends Pick<UplinkView, 'state' | 'tier'>>(uplinks: readonly U[]): U[] {
  const live = uplinks.filter((u) => u.state === 'up');
  if (live.length === 0) return [];
  const lowest = Math.min(...live.map((u) => u.tier));
  return live.filter((u) => u.tier === lowest);
}

/** What a line does now: carries traffic, stands by (up, a lower tier carries), or is down. */
export function role<U extends Pick<UplinkView, 'name' | 'state' | 'tier'>>(uplink: U, uplinks: readonly U[]): 'carrying' | 'standby' | 'down' {
  if (uplink.state !== 'up') return 'down';
  return carrying(uplinks).some((u) => u.name === uplink.name) ? 'carrying' : 'standby';
}

/** The config with each uplink on the interface a ppp ip-up hook reported for it (ppp0 → ppp1). */
export function withBindings(config: Config, bindings: Readonly<Record<string, string>>): Config {
  if (Object.keys(bindings).length === 0) return config;
  return { ...config, uplinks: config.uplinks.map((u) => (bindings[u.name] ? { ...u, interface: bindings[u.name] as string } : u)) };
}
