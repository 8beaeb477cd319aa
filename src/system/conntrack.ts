// Forgetting the connections that left by a dead uplink — and only those:
// they are selected by the uplink's connection mark, so every other
// connection on the gateway is untouched.

import { hex } from '../core/marks.js';
import { busySources } from '../parse/conntrack.js';
import type { Runner } from './exec.js';

/** Deletes conntrack entries whose connection field is this mark; returns how many went. */
export async function forgetConnections(runner: Runner, mark: number, mask: number): Promise<number> {
  // conntrack -D exits 1 when nothing matched (DESIGN.md §6).
  const result = await runner.run(['conntrack', '-D', '--mark', `${hex(mark)}/${hex(mask)}`], { okExitCodes: [0, 1] });
  const counted = /([0-9]+) flow entries have been deleted/.exec(result.stderr);
  return counted ? Number(counted[1]) : 0;
}

/**
 * Deletes the connections from one network that have no uplink of ours yet
 * (connection mark 0 under our mask): after other software removed our
 * chains for a moment, connections started in that moment were NATed (or
 * not) outside our rules and would stay broken; forgotten, their next packet
 * starts afresh through the repaired rules. Connections that have an uplink
 * are untouched.
 */
export async function forgetUnmarked(runner: Runner, network: string, mask: number): Promise<number> {
  const result = await runner.run(['conntrack', '-D', '-s', network, '--mark', `0x0/${hex(mask)}`], { okExitCodes: [0, 1] });
  const counted = /([0-9]+) flow entries have been deleted/.exec(result.stderr);
  return counted ? Number(counted[1]) : 0;
}

/** The addresses with a connection open through an uplink (a connection field in its mark): `dispatcher rebalance` leaves them be. */
export async function clientsWithConnections(runner: Runner, connMask: number): Promise<Set<string>> {
  // -L prints the entries on stdout and the count on stderr; none is exit 0.
  const result = await runner.run(['conntrack', '-L', '-f', 'ipv4'], { okExitCodes: [0] });
  return busySources(result.stdout, connMask);
}
