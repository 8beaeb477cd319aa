// DHCP lease files, for gateway discovery on uplinks that get their address
// from dhclient but whose route is not (or not yet) in the routing table.

import { readFile } from 'node:fs/promises';
import type { Config } from '../model/config.js';
import { gatewayFromLeases, parseLeases } from '../parse/dhclient.js';

/** Where Debian's dhclient (and ifupdown's) keeps leases for an interface. */
export function leaseFilesFor(iface: string): string[] {
  return [`/var/lib/dhcp/dhclient.${iface}.leases`, `/var/lib/dhcp/dhclient-${iface}.leases`, '/var/lib/dhcp/dhclient.leases'];
}

/** Uplink name → gateway from its newest current lease, for uplinks without a fixed gateway. */
export async function readLeaseGateways(config: Config, now: number): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  await Promise.all(
    config.uplinks
      .filter((u) => u.gateway === undefined)
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
