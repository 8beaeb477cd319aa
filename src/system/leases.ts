// DHCP lease files, for gateway discovery on uplinks that get their address
// from dhclient but whose route is not (or not yet) in the routing table.

import { readFile } from 'node:fs/promises';
import { viewUplinks } from '../core/uplinks.js';
import type { Config } from '../model/config.js';
import type { RoutingState } from '../model/kernel.js';
import type { UplinkView } from '../model/state.js';
import { gatewayFromLeases, parseLeases } from '../parse/dhclient.js';

/** Where Debian's dhclient (and ifupdown's) keeps leases for an interface. */
export function leaseFilesFor(iface: string): string[] {
  return [`/var/lib/dhcp/dhclient.${iface}.leases`, `/var/lib/dhcp/dhclient-${iface}.leases`, '/var/lib/dhcp/dhclient.leases'];
}

/** Uplink name → gateway from its newest current lease, for the named uplinks. */
async function readLeaseGateways(config: Config, names: ReadonlySet<string>, now: number): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  await Promise.all(
    config.uplinks
      .filter((u) => names.has(u.name))
      .map(async (uplink) => {
        const iface = uplink.interface;
        for (const file of uplink.leaseFile ? [uplink.leaseFile] : leaseFilesFor(iface)) {
          const text = await readFile(file, 'utf8').catch(() => null);
          const gateway = text === null ? undefined : gatewayFromLeases(parseLeases(text), iface, now);
          if (gateway) {
            found.set(uplink.name, gateway);
            return;
          }
        }
      }),
  );
  return found;
}

/**
 * The link-level view of every uplink. Lease files are read only for uplinks
 * whose link is up but whose gateway neither the config, a ppp peer nor a
 * route gives: not on every run for every uplink.
 */
export async function discoverUplinks(config: Config, observed: Pick<RoutingState, 'links' | 'routes'>, now: number): Promise<UplinkView[]> {
  const views = viewUplinks(config, observed.links, observed.routes);
  const missing = new Set(views.filter((v) => v.present && v.gateway === undefined && !v.pointToPoint).map((v) => v.name));
  if (missing.size === 0) return views;
  return viewUplinks(config, observed.links, observed.routes, await readLeaseGateways(config, missing, now));
}
