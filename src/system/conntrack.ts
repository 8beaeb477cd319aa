// Forgetting connections: those that left by a dead uplink — and only those:
// they are selected by the uplink's connection mark, so every other
// connection on the gateway is untouched — and, after a repair, those that
// started while our rules were gone.

import { hex } from '../core/marks.js';
import { busySources, untranslatedByUplink } from '../parse/conntrack.js';
import type { Runner } from './exec.js';

/**
 * Deletes conntrack entries whose connection field is this mark; returns how
 * many went. Both families unless one is named (conntrack 1.4.7's -D with no
 * -f and no address walks the whole table).
 */
export async function forgetConnections(runner: Runner, mark: number, mask: number, family?: 'ipv4' | 'ipv6'): Promise<number> {
  return deleted(runner, ['conntrack', '-D', ...(family ? ['-f', family] : []), '--mark', `${hex(mark)}/${hex(mask)}`]);
}

/** Runs a conntrack deletion; how many entries went. */
async function deleted(runner: Runner, argv: readonly string[]): Promise<number> {
  // conntrack -D exits 1 when nothing matched (DESIGN.md §6).
  const result = await runner.run(argv, { okExitCodes: [0, 1] });
  const counted = /([0-9]+) flow entries have been deleted/.exec(result.stderr);
  return counted ? Number(counted[1]) : 0;
}

/**
 * After other software removed our chains for a moment: deletes the
 * connections from one network that started in that moment, so their next
 * packet starts afresh through the repaired rules. They are of two kinds:
 *  - no uplink of ours (connection mark 0): NATed, or not, outside our rules;
 *  - an uplink of ours but no source translation: one of their packets passed
 *    our restored mark rules before this ran, yet their NAT, decided by the
 *    first packet, stays none (they would leave with a LAN address for good).
 * Connections that have an uplink and were translated are untouched.
 */
export async function forgetUntranslated(runner: Runner, network: string, connMask: number): Promise<number> {
  let count = await deleted(runner, ['conntrack', '-D', '-s', network, '--mark', `0x0/${hex(connMask)}`]);
  // Read after the first deletion: an entry marked meanwhile is in this list. The kernel filters only by
  // exact reply address, so each (client, uplink) pair is one deletion; only the clients active in the moment have any.
  const listed = await runner.run(['conntrack', '-L', '-f', network.includes(':') ? 'ipv6' : 'ipv4', '-s', network], { okExitCodes: [0] });
  for (const { source, connMark } of untranslatedByUplink(listed.stdout, connMask)) {
    count += await deleted(runner, ['conntrack', '-D', '-s', source, '-q', source, '--mark', `${hex(connMark)}/${hex(connMask)}`]);
  }
  return count;
}

/** The addresses (IPv6 ones too with `ipv6`) with a connection open through an uplink (a connection field in its mark): `dispatcher rebalance` leaves them be. */
export async function clientsWithConnections(runner: Runner, connMask: number, ipv6 = false): Promise<Set<string>> {
  // -L prints the entries on stdout and the count on stderr; none is exit 0.
  const families = ipv6 ? ['ipv4', 'ipv6'] : ['ipv4'];
  const listed = await Promise.all(families.map((family) => runner.run(['conntrack', '-L', '-f', family], { okExitCodes: [0] })));
  return new Set(listed.flatMap((result) => [...busySources(result.stdout, connMask)]));
}
