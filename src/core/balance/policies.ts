// Policies (pure): rules for new LAN connections, first match wins. A policy
// either names lines in order (`via`: the first live one carries) or a
// balancing mode for the connections it takes (`balance`).
//
// A `via` list is a pool of its own: its pool mark is numbered after the
// uplinks' (pool index uplinks + k for the k-th distinct list, iptables/README.md),
// and its pool table routes by the list's first live line, or over the lines
// that carry when none of the list is live. So the packet filter only marks,
// and never changes when a line dies or returns: a verdict changes one route,
// as it does for the uplinks' own pools. A connection keeps the line it left
// by through its connection mark, as every connection does.

import type { Config } from '../../model/config.js';
import type { ChooseIntent, PolicyAction, PolicyFilter } from '../../model/plan.js';
import type { Assignments, ClientRecord, UplinkView } from '../../model/state.js';
import { markLayout, poolMark } from '../marks.js';
import { routable } from '../uplinks.js';
import { type PacketFacts, matchesPacket } from './policy-match.js';

export type Policy = Config['policies'][number];

export interface ViaPool {
  /** Its pool index: after the uplinks' (tables.pool(index), priorities.pool(index)). */
  readonly index: number;
  readonly via: readonly string[];
}

const keyOf = (via: readonly string[]): string => via.join(' ');

/** The distinct `via` lists, in order of first use, each with its pool index. */
export function viaPools(config: Pick<Config, 'policies' | 'uplinks'>): ViaPool[] {
  const pools = new Map<string, ViaPool>();
  for (const policy of config.policies) {
    if (policy.action.kind !== 'via') continue;
    const key = keyOf(policy.action.via);
    if (!pools.has(key)) pools.set(key, { index: config.uplinks.length + pools.size, via: policy.action.via });
  }
  return [...pools.values()];
}

/** The pool a `via` list is, by its list. */
export function viaPoolOf(config: Pick<Config, 'policies' | 'uplinks'>, via: readonly string[]): ViaPool {
  return viaPools(config).find((pool) => keyOf(pool.via) === keyOf(via)) as ViaPool;
}

/**
 * The line a `via` list sends by now: its first line that is up, whatever its
 * tier (the operator named it); null when none is, and the list's pool then
 * routes as unassigned traffic does, over the lines that carry.
 */
export function firstLive(via: readonly string[], uplinks: readonly UplinkView[]): UplinkView | null {
  for (const name of via) {
    const uplink = uplinks.find((u) => u.name === name);
    if (uplink && uplink.state === 'up' && routable(uplink)) return uplink;
  }
  return null;
}

/**
 * A match as the packet filter checks it. MACs become the addresses of the
 * clients that have them (a host is its addresses, as everywhere here): one
 * kind of set per backend, and a kernel without ipset's hash:mac (this lab's)
 * matches them too.
 */
function filterOf(match: Policy['match'], assignments: Assignments, ipv6: boolean): PolicyFilter {
  const { macs, sources, ...rest } = match;
  if (macs.length + sources.length === 0) return { ...rest, sources: null };
  if (macs.length === 0) return { ...rest, sources: { networks: sources, hosts: null } };
  return { ...rest, sources: { networks: sources, hosts: hostsOf(assignments, (record) => macs.includes(record.mac.toLowerCase()), ipv6) } };
}

/** The addresses of the clients `picked` takes, as host networks; their IPv6 addresses too in IPv6 nat mode (one host, one line). */
function hostsOf(assignments: Assignments, picked: (record: ClientRecord) => boolean, ipv6: boolean): string[] {
  const hosts: string[] = [];
  const hosts6: string[] = [];
  for (const [ip, record] of assignments) {
    if (!picked(record)) continue;
    hosts.push(`${ip}/32`);
    if (ipv6 && record.ipv6) for (const address of Object.keys(record.ipv6)) hosts6.push(`${address}/128`);
  }
  return [...hosts.sort(), ...hosts6.sort()];
}

/** What the packet filter does with a LAN connection that has no line yet; null when it keeps its client's pool (host mode, no policies). */
export function planChoose(config: Config, assignments: Assignments): ChooseIntent | null {
  const { mode } = config.balance;
  if (config.policies.length === 0 && mode === 'host') return null;
  const layout = markLayout(config.marks.mask);
  const ipv6 = config.lan.ipv6.mode === 'nat';
  const byMode = (m: Config['balance']['mode']): PolicyAction => (m === 'host' ? { kind: 'keep' } : { kind: 'hash', mode: m });
  const policies = config.policies.map((policy) => ({
    name: policy.name,
    match: filterOf(policy.match, assignments, ipv6),
    action: policy.action.kind === 'via' ? ({ kind: 'pool', poolMark: poolMark(layout, viaPoolOf(config, policy.action.via).index) } as const) : byMode(policy.action.mode),
  }));
  // A client an operator pinned to a line keeps it in the hashing modes too (after the policies, which name traffic, not clients).
  // The rule is there even while nobody is pinned: a pin then changes a set's elements, never the rules.
  const keep =
    mode === 'host'
      ? []
      : [{ name: PINNED, match: { sources: { networks: [], hosts: hostsOf(assignments, (record) => record.pinned, ipv6) }, destinations: [], protocols: [], ports: [], dscp: [] }, action: { kind: 'keep' } as const }];
  return { policies: [...policies, ...keep], otherwise: byMode(mode) };
}

/** The rule that keeps pinned clients in their pools in the hashing modes, after the configured policies. */
export const PINNED = 'pinned clients';

/** The modes some connection is hashed by: the global one and the policies'. */
export function hashedModes(choose: ChooseIntent | null): ('destination' | 'connection')[] {
  if (!choose) return [];
  const modes = new Set<'destination' | 'connection'>();
  for (const action of [...choose.policies.map((p) => p.action), choose.otherwise]) if (action.kind === 'hash') modes.add(action.mode);
  return [...modes].sort();
}

/** Whether some connections are hashed: by balance.mode or by a policy's balance. */
export function hashes(config: Pick<Config, 'balance' | 'policies'>): boolean {
  return config.balance.mode !== 'host' || config.policies.some((p) => p.action.kind === 'balance' && p.action.mode !== 'host');
}

/** The first policy that takes this packet, with its position; null when none does. */
export function policyFor(config: Pick<Config, 'policies'>, packet: PacketFacts): { index: number; policy: Policy } | null {
  const index = config.policies.findIndex((policy) => matchesPacket(policy.match, packet));
  return index < 0 ? null : { index, policy: config.policies[index] as Policy };
}
