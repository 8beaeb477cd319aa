// `dispatcher explain IP` (pure): why a client's traffic goes where it goes —
// its pool, the mark the client set gives its packets, the ip rule that mark
// selects, the table and the route in it, the uplink — and what happens to it
// if that uplink dies. Computed with the same planner functions that program
// the kernel, so the explanation cannot drift from what is loaded.

import type { Config } from '../model/config.js';
import type { Nexthop } from '../model/kernel.js';
import type { Assignments, UplinkView } from '../model/state.js';
import { hmarkAddressBucket, nftAddressBucket } from './balance/kernel-hash.js';
import { planSpread } from './balance/spread.js';
import { inLanSubnets } from './clients.js';
import { ids } from './contract.js';
import { cidrContains, parseCidr, parseIpv4 } from './ipv4.js';
import { connMark, hex, markLayout, poolMark } from './marks.js';
import { planRoutes } from './plan.js';
import { role } from './uplinks.js';
import type { Explanation } from '../schema/control.js';

function describeHops(hops: readonly Nexthop[], uplinks: readonly UplinkView[]): string {
  return hops
    .map((hop) => {
      const uplink = uplinks.find((u) => u.interface === hop.dev);
      const weight = hops.length > 1 ? ` weight ${hop.weight}` : '';
      return `${uplink?.name ?? hop.dev} (${hop.gateway ? `via ${hop.gateway} ` : ''}dev ${hop.dev}${weight})`;
    })
    .join(' + ');
}

function poolRoute(config: Config, uplinks: readonly UplinkView[], index: number): readonly Nexthop[] {
  return planRoutes(config, uplinks).find((r) => r.table === String(ids(config).tables.pool(index)))?.nexthops ?? [];
}

/** In the destination and connection modes: how a new connection picks its pool instead. */
function spreadStep(config: Config, uplinks: readonly UplinkView[]): string[] {
  const spread = planSpread(config, uplinks);
  if (!spread) return [];
  const hashed = spread.mode === 'destination' ? 'its address and the destination address' : 'the whole connection (addresses, protocol, ports)';
  const ranges = spread.ranges.map((r) => `${r.uplink} ${r.from}–${r.to}`).join(', ');
  return [
    `balance: ${spread.mode} — the first packet of each new connection is hashed (${hashed}) into one of ${spread.buckets} buckets, and the packet gets the bucket's pool mark instead of its client's: ${ranges}; each pool's table routes as that line's does`,
  ];
}

/**
 * Where the client's new connections to `to` go, when that differs from its
 * pool: a static route that covers `to` (the static table's rule comes before
 * the pools'), or, in the destination mode, the bucket the kernel's hash of
 * the two addresses falls in (core/balance/kernel-hash.ts). Connection mode
 * depends on the source port, which only the connection knows.
 */
function towards(config: Config, uplinks: readonly UplinkView[], ip: string, to: string): { steps: string[]; to: NonNullable<Explanation['to']> } {
  const { tables } = ids(config);
  const destination = parseIpv4(to) as number;
  const route = config.staticRoutes.find((r) => {
    const cidr = parseCidr(r.destination);
    return cidr !== null && cidrContains(cidr, destination);
  });
  if (route) {
    return {
      steps: [`to ${to}: the static route ${route.destination} covers it (table ${tables.static}, ahead of the pools): the first live of ${route.via.join(', ')}`],
      to: { address: to, bucket: null, pool: null },
    };
  }
  const spread = planSpread(config, uplinks);
  if (!spread) return { steps: [], to: { address: to, bucket: null, pool: null } };
  if (spread.mode === 'connection') {
    return {
      steps: [`to ${to}: each new connection takes the bucket of its own addresses, protocol and ports; the source port is the connection's own, so no single line can be named`],
      to: { address: to, bucket: null, pool: null },
    };
  }
  const hash = config.netfilter.backend === 'nftables' ? nftAddressBucket : hmarkAddressBucket;
  const bucket = hash(parseIpv4(ip) as number, destination, spread.seed, spread.buckets);
  const range = spread.ranges.find((r) => bucket >= r.from && bucket <= r.to);
  const pool = uplinks.find((u) => u.name === range?.uplink);
  if (!range || !pool) return { steps: [], to: { address: to, bucket, pool: null } };
  return {
    steps: [
      `to ${to}: the hash of ${ip} and ${to} is bucket ${bucket} of ${spread.buckets}, ${pool.name}'s: table ${tables.pool(pool.index)}, default via ${describeHops(poolRoute(config, uplinks, pool.index), uplinks) || 'nothing'}`,
    ],
    to: { address: to, bucket, pool: pool.name },
  };
}

export function explain(config: Config, uplinks: readonly UplinkView[], assignments: Assignments, ip: string, to?: string): Explanation {
  const toward = to === undefined ? null : towards(config, uplinks, ip, to);
  const { tables, priorities } = ids(config);
  const layout = markLayout(config.marks.mask);
  const address = parseIpv4(ip) as number;
  const multipath = planRoutes(config, uplinks).find((r) => r.table === String(tables.multipath))?.nexthops ?? [];
  const connections = `open connections keep the uplink they started on: their connection mark (restored from conntrack) selects rule ${priorities.conn(0)}+i and that uplink's own table, ahead of the pool rules`;
  if (!inLanSubnets(config)(address)) {
    return { ip, mark: null, verdict: 'not a client', steps: [`${ip} is outside lan.subnets (${config.lan.subnets.join(', ')}): the dispatcher never assigns it a pool`], ifUplinkDies: null, pool: null, pinned: false, to: null };
  }
  const record = assignments.get(ip);
  const uplink = record ? uplinks.find((u) => u.name === record.uplink) : undefined;
  if (!record || !uplink) {
    return {
      ip,
      mark: null,
      verdict: 'not assigned',
      steps: [
        `${ip} has no pool yet (not seen in the neighbour table, or refused by clients.max / clients.per_mac)`,
        ...spreadStep(config, uplinks),
        `its packets get no pool mark, so rule ${priorities.multipath} sends them to table ${tables.multipath}: ${describeHops(multipath, uplinks) || 'no live uplink'}`,
        ...(toward?.steps ?? []),
        connections,
      ],
      ifUplinkDies: `a dead uplink leaves table ${tables.multipath} at once; the others carry its share`,
      pool: null,
      pinned: false,
      to: toward?.to ?? null,
    };
  }
  const mark = `${hex(poolMark(layout, uplink.index))}/${hex(layout.poolMask)}`;
  const route = poolRoute(config, uplinks, uplink.index);
  const now = role(uplink, uplinks);
  const home = now === 'carrying';
  const survivors = uplinks.map((u) => (u.name === uplink.name ? { ...u, state: 'down' as const, reason: 'what if' } : u));
  const failover = poolRoute(config, survivors, uplink.index);
  const steps = [
    `${ip} is in ${uplink.name}'s pool${record.pinned ? ' (pinned by an operator)' : ''}${record.mac ? `, MAC ${record.mac} on ${record.interface}` : ''}, since ${new Date(record.firstSeen).toISOString()}`,
    `the client set (dispatcher-clients) gives its packets the pool mark ${mark}`,
    ...spreadStep(config, uplinks),
    `rule ${priorities.pool(uplink.index)}: fwmark ${mark} lookup ${tables.pool(uplink.index)}`,
    `table ${tables.pool(uplink.index)}: default via ${describeHops(route, uplinks) || 'nothing (no uplink can carry it)'}`,
    home
      ? `${uplink.name} is up: new connections leave by ${uplink.name} (${uplink.interface}${uplink.address ? `, ${uplink.address}` : ''}), MASQUERADEd to its address`
      : now === 'standby'
        ? `${uplink.name} is up but stands by (tier ${uplink.tier}; a line of a lower tier is up): its pool is carried by the lower tier`
        : `${uplink.name} is down (${uplink.reason}): its pool is carried by the survivors until it is back`,
    ...(toward?.steps ?? []),
    connections,
  ];
  const conn = `${hex(connMark(layout, uplink.index))}/${hex(layout.connMask)}`;
  const ifUplinkDies = home
    ? `if ${uplink.name} dies: table ${tables.pool(uplink.index)} points at ${describeHops(failover, survivors) || 'nothing (no other uplink is up: routes stay as they are)'}; ` +
      `its connections (conntrack mark ${conn}) are forgotten so the client reconnects at once; the client stays in ${uplink.name}'s pool and comes home when ${uplink.name} is back`
    : now === 'standby'
      ? `${uplink.name} stands by: the client leaves by it only when every line of a lower tier is down`
      : `${uplink.name} is already down: the client comes home when it is back`;
  return { ip, mark: poolMark(layout, uplink.index), verdict: 'assigned', steps, ifUplinkDies, pool: uplink.name, pinned: record.pinned === true, to: toward?.to ?? null };
}
