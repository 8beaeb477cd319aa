// What `dispatcher pools` shows, built the same way by the daemon and by the
// CLI reading the store when no daemon runs.

import type { PolicyStatus, PoolsReport } from '../schema/control.js';
import type { Config } from '../model/config.js';
import type { Assignments, UplinkView } from '../model/state.js';
import { firstLive, viaPoolOf } from './balance/policies.js';
import { describeMatch } from './balance/policy-match.js';
import { planSpread } from './balance/spread.js';
import { ids } from './contract.js';
import { parseIpv4 } from './ipv4.js';
import { connMark, hex, markLayout, poolMark } from './marks.js';
import { role } from './uplinks.js';

const byAddress = (a: string, b: string): number => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0);

/** `sorted`: false leaves each pool's lists in store order (status and metrics count them; sorting 50,000 addresses costs ~100 ms). */
export function poolsView(config: Config, uplinks: readonly UplinkView[], assignments: Assignments, sorted = true): PoolsReport {
  const layout = markLayout(config.marks.mask);
  const { tables } = ids(config);
  const members = new Map<string, string[]>(uplinks.map((u) => [u.name, []]));
  const pinned = new Map<string, string[]>(uplinks.map((u) => [u.name, []]));
  const members6 = new Map<string, string[]>(uplinks.map((u) => [u.name, []]));
  for (const [ip, record] of assignments) {
    members.get(record.uplink)?.push(ip);
    if (record.ipv6 && config.lan.ipv6.mode === 'nat') members6.get(record.uplink)?.push(...Object.keys(record.ipv6));
    if (record.pinned) pinned.get(record.uplink)?.push(ip);
  }
  const spread = planSpread(config, uplinks);
  const buckets = (name: string): number | null => {
    if (!spread) return null;
    const range = spread.ranges.find((r) => r.uplink === name);
    return range ? range.to - range.from + 1 : 0;
  };
  return {
    uplinks: uplinks.map((u) => ({
      name: u.name,
      interface: u.interface,
      state: u.state,
      reason: u.reason,
      degraded: u.degraded ?? null,
      weight: u.weight,
      tier: u.tier,
      role: role(u, uplinks),
      address: u.address ?? null,
      gateway: u.gateway ?? null,
      gatewaySource: u.gatewaySource ?? null,
      uplinkTable: tables.uplink(u.index),
      poolTable: tables.pool(u.index),
      poolMark: `${hex(poolMark(layout, u.index))}/${hex(layout.poolMask)}`,
      connMark: `${hex(connMark(layout, u.index))}/${hex(layout.connMask)}`,
      clients: inOrder(members.get(u.name) ?? [], sorted, byAddress),
      clients6: inOrder(members6.get(u.name) ?? [], sorted),
      pinned: inOrder(pinned.get(u.name) ?? [], sorted, byAddress),
      buckets: buckets(u.name),
    })),
    clients: assignments.size,
    balance: config.balance.mode,
  };
}

function inOrder(list: string[], sorted: boolean, compare?: (a: string, b: string) => number): string[] {
  return sorted ? list.sort(compare) : list;
}

/** The policies in order, each with where its connections go now. */
export function policiesView(config: Config, uplinks: readonly UplinkView[]): PolicyStatus[] {
  return config.policies.map((policy) => {
    const base = { name: policy.name, match: describeMatch(policy.match) };
    if (policy.action.kind === 'balance') return { ...base, action: `balance ${policy.action.mode}`, pool: null, uplink: null };
    const pool = viaPoolOf(config, policy.action.via);
    return { ...base, action: `via ${policy.action.via.join(', ')}`, pool: pool.index + 1, uplink: firstLive(policy.action.via, uplinks)?.name ?? null };
  });
}
