// dhclient lease files (/var/lib/dhcp/dhclient*.leases): blocks of
//   lease { interface "eth1"; fixed-address 192.0.2.10; option routers 192.0.2.9; expire 3 2026/11/22 17:10:00; }
// The newest unexpired lease of an interface names its gateway.

import { isIpv4 } from '../core/ipv4.js';

export interface Lease {
  readonly interface: string;
  readonly address?: string;
  readonly routers: readonly string[];
  /** Epoch milliseconds (UTC, as dhclient writes it); null for "expire never". */
  readonly expires: number | null;
}

function parseWhen(text: string): number | null | undefined {
  if (text === 'never') return null;
  const match = /^[0-6] ([0-9]{4})\/([0-9]{2})\/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
}

export function parseLeases(text: string): Lease[] {
  const leases: Lease[] = [];
  for (const block of text.matchAll(/lease\s*\{([^}]*)\}/g)) {
    const statements = (block[1] as string)
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean);
    let iface: string | undefined;
    let address: string | undefined;
    let routers: string[] = [];
    let expires: number | null | undefined;
    for (const statement of statements) {
      const [keyword, ...rest] = statement.split(/\s+/);
      const value = rest.join(' ');
      if (keyword === 'interface') iface = /^"([^"]+)"$/.exec(value)?.[1];
      else if (keyword === 'fixed-address' && isIpv4(value)) address = value;
      else if (keyword === 'option' && rest[0] === 'routers') routers = rest.slice(1).join('').split(',').filter(isIpv4);
      else if (keyword === 'expire') expires = parseWhen(value);
    }
    if (iface !== undefined && expires !== undefined) leases.push({ interface: iface, ...(address ? { address } : {}), routers, expires });
  }
  return leases;
}

/** The gateway of the newest lease for this interface that has not expired. */
export function gatewayFromLeases(leases: readonly Lease[], iface: string, now: number): string | undefined {
  const current = leases.filter((l) => l.interface === iface && (l.expires === null || l.expires > now) && l.routers.length > 0);
  return current[current.length - 1]?.routers[0];
}
